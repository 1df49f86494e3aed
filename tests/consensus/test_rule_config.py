"""Building rules from a task spec: unknown names and bad parameters are ConfigErrors."""

from __future__ import annotations

import pytest

from consensus.strategies.registry import RULES, build_rule
from consensus.task_spec import AggregationSpec, RuleSpec, TaskSpec
from fedchain.errors import ConfigError


def test_rule_names() -> None:
    assert set(RULES) == {
        "fedavg",
        "fedprox",
        "fedadam",
        "fedyogi",
        "median",
        "trimmed-mean",
        "krum",
        "multi-krum",
        "geometric-median",
    }


def test_unknown_rule_and_wrapper_name_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown aggregation rule 'krumm'.*multi-krum"):
        build_rule(AggregationSpec(rule="krumm"))
    with pytest.raises(ConfigError, match=r"unknown aggregation wrapper 'clip'.*norm-clip"):
        build_rule(AggregationSpec(rule="fedavg", wrappers=(RuleSpec(name="clip"),)))


@pytest.mark.parametrize(
    ("rule", "params", "match"),
    [
        ("trimmed-mean", {"trim": 0.6}, r"trim must be in \[0, 0.5\), got 0.6"),
        ("trimmed-mean", {"trim": -0.1}, "trim"),
        ("trimmed-mean", {"trim": "a lot"}, "trim must be a number"),
        ("trimmed-mean", {"trimm": 0.1}, "bad parameters"),
        ("fedavg", {"mu": 0.1}, "bad parameters"),
        ("fedprox", {"mu": 0}, r"mu must be in \(0, ∞\)"),
        ("fedadam", {"beta1": 1.0}, r"beta1 must be in \[0, 1\)"),
        ("fedyogi", {"tau": 0.0}, "tau"),
        ("fedadam", {"server_lr": -1}, "server_lr"),
        ("krum", {"byzantine": -1}, "byzantine must be an integer >= 0"),
        ("krum", {"keep": 2}, "bad parameters"),
        ("multi-krum", {"keep": 0}, "keep must be an integer >= 1"),
        ("multi-krum", {"byzantine": 1.5}, "byzantine"),
        ("geometric-median", {"iterations": -1}, r"iterations must be an integer in \[0, 1000\]"),
        ("geometric-median", {"eps": 0}, "eps"),
        ("median", {"trim": 0.1}, "bad parameters"),
    ],
)
def test_bad_parameters(rule: str, params: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_rule(AggregationSpec(rule=rule, params=params))


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_norm": 1.0, "median_multiple": 2.0},
        {"max_norm": 0},
        {"median_multiple": -1},
        {"max_norm": 1.0, "bound": 2},
    ],
)
def test_norm_clip_needs_exactly_one_positive_bound(params: dict[str, object]) -> None:
    spec = AggregationSpec(rule="median", wrappers=(RuleSpec(name="norm-clip", params=params),))
    with pytest.raises(ConfigError):
        build_rule(spec)


def test_fedprox_declares_its_client_hook_others_none() -> None:
    assert build_rule(AggregationSpec(rule="fedprox")).client_hooks().proximal_mu == 0.01
    assert (
        build_rule(AggregationSpec(rule="fedprox", params={"mu": 0.3})).client_hooks().proximal_mu
        == 0.3
    )
    for name in RULES:
        if name != "fedprox":
            assert build_rule(AggregationSpec(rule=name)).client_hooks().proximal_mu == 0.0


def test_a_task_spec_names_a_rule_with_parameters() -> None:
    spec = TaskSpec.model_validate(
        {
            "name": "t",
            "task": "heart",
            "model": {"arch": "logreg"},
            "training": {"epochs": 1, "lr": 0.1, "batch_size": 8},
            "aggregation": {
                "rule": "trimmed-mean",
                "params": {"trim": 0.1},
                "wrappers": [{"name": "norm-clip", "params": {"max_norm": 5}}],
            },
        }
    )
    rule = build_rule(TaskSpec.from_bytes(spec.to_bytes()).aggregation)
    assert rule.describe() == {
        "name": "norm-clip",
        "inner": {"name": "trimmed-mean", "trim": 0.1},
        "max_norm": 5.0,
        "median_multiple": None,
    }
