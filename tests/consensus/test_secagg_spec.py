"""A task spec with secure aggregation refuses what needs individual updates, naming it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from consensus.task_spec import TaskSpec


def _spec(**fields: Any) -> dict[str, Any]:
    return {
        "name": "t",
        "task": "heart",
        "model": {"arch": "logreg"},
        "training": {"epochs": 1, "lr": 0.1, "batch_size": 8},
        "aggregation": "fedavg",
        "secure_aggregation": {"clip_norm": 5.0},
        **fields,
    }


def test_fedavg_with_secure_aggregation_round_trips() -> None:
    spec = TaskSpec.model_validate(_spec())
    again = TaskSpec.from_bytes(spec.to_bytes())
    assert again.secure_aggregation is not None
    assert again.secure_aggregation.clip_norm == 5.0
    assert again.secure_aggregation.fraction_bits == 24
    assert TaskSpec.model_validate(_spec(aggregation="fedprox")).aggregation.rule == "fedprox"


@pytest.mark.parametrize(
    "rule", ["krum", "multi-krum", "median", "trimmed-mean", "geometric-median", "fedadam"]
)
def test_rules_that_read_individual_updates_are_refused_by_name(rule: str) -> None:
    with pytest.raises(ValidationError, match=f"cannot run the aggregation rule '{rule}'"):
        TaskSpec.model_validate(_spec(aggregation=rule))


def test_the_default_rule_is_refused_too() -> None:
    fields = _spec()
    del fields["aggregation"]
    with pytest.raises(ValidationError, match=r"'multi-krum'.*use aggregation = \"fedavg\""):
        TaskSpec.model_validate(fields)


def test_norm_checks_wrappers_and_encodings_are_refused() -> None:
    with pytest.raises(ValidationError, match="norm-based update check"):
        TaskSpec.model_validate(_spec(max_update_norm_ratio=3.0))
    wrapped = {"rule": "fedavg", "wrappers": [{"name": "norm-clip", "params": {"max_norm": 1}}]}
    with pytest.raises(ValidationError, match="wrapper 'norm-clip'"):
        TaskSpec.model_validate(_spec(aggregation=wrapped))
    with pytest.raises(ValidationError, match="update encoding 'int8'"):
        TaskSpec.model_validate(_spec(encoding="int8"))


def test_bad_settings_are_refused_and_plain_specs_are_unaffected() -> None:
    with pytest.raises(ValidationError, match="clip_norm"):
        TaskSpec.model_validate(_spec(secure_aggregation={"clip_norm": 0}))
    with pytest.raises(ValidationError, match="fraction_bits"):
        TaskSpec.model_validate(_spec(secure_aggregation={"clip_norm": 1, "fraction_bits": 60}))
    plain = _spec(aggregation="median", secure_aggregation=None)
    assert TaskSpec.model_validate(plain).secure_aggregation is None
