"""Every aggregation rule and wrapper a task spec may name, and building one from the spec."""

from __future__ import annotations

from functools import partial
from typing import Any

from consensus.strategies.abc import AggregationRule, RuleWrapper
from consensus.strategies.clipping import NormClip
from consensus.strategies.fedavg import FedAvg
from consensus.strategies.fedopt import FedAdam, FedYogi
from consensus.strategies.fedprox import FedProx
from consensus.strategies.geometric_median import GeometricMedian
from consensus.strategies.krum import Krum, MultiKrum
from consensus.strategies.median import Median
from consensus.strategies.trimmed_mean import TrimmedMean
from consensus.task_spec import AggregationSpec
from fedchain.errors import ConfigError

RULES: dict[str, type[AggregationRule]] = {
    cls.name: cls
    for cls in (
        FedAvg,
        FedProx,
        FedAdam,
        FedYogi,
        Median,
        TrimmedMean,
        Krum,
        MultiKrum,
        GeometricMedian,
    )
}
"""Registered rules by the name a task spec uses."""

WRAPPERS: dict[str, type[RuleWrapper]] = {cls.name: cls for cls in (NormClip,)}
"""Registered wrappers by name; each takes the inner rule first, then its parameters."""


def _known(table: dict[str, Any]) -> str:
    return ", ".join(sorted(table)) or "(none)"


def build_rule(spec: AggregationSpec) -> AggregationRule:
    """The rule a task spec names, wrapped as it says; ConfigError naming what is wrong."""
    try:
        cls = RULES[spec.rule]
    except KeyError:
        raise ConfigError(
            f"unknown aggregation rule {spec.rule!r}; known rules: {_known(RULES)}"
        ) from None
    rule = _construct(f"aggregation rule {spec.rule!r}", cls, spec.params)
    for wrapper in spec.wrappers:
        try:
            wcls = WRAPPERS[wrapper.name]
        except KeyError:
            raise ConfigError(
                f"unknown aggregation wrapper {wrapper.name!r}; known wrappers: {_known(WRAPPERS)}"
            ) from None
        rule = _construct(
            f"aggregation wrapper {wrapper.name!r}", partial(wcls, rule), wrapper.params
        )
    return rule


def _construct(what: str, make: Any, params: dict[str, Any]) -> AggregationRule:
    try:
        rule: AggregationRule = make(**params)
    except TypeError as exc:
        raise ConfigError(f"{what}: bad parameters {sorted(params)}: {exc}") from None
    return rule
