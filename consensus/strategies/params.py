"""Checking a rule's keyword parameters, with ConfigErrors that name the parameter and range."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

from consensus.strategies.abc import Aggregate, StateDict, Update
from fedchain.errors import ConfigError


def real(
    rule: str,
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """``value`` as a float within the range; ConfigError naming ``rule.name`` and the range."""
    lo = "(" if low_open else "["
    hi = ")" if high_open or math.isinf(high) else "]"
    allowed = f"{lo}{low:g}, {high:g}{hi}".replace("inf", "∞")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{rule}: {name} must be a number in {allowed}, got {value!r}")
    v = float(value)
    ok = (
        math.isfinite(v)
        and (v > low if low_open else v >= low)
        and (v < high if high_open else v <= high)
    )
    if not ok:
        raise ConfigError(f"{rule}: {name} must be in {allowed}, got {value!r}")
    return v


def integer(rule: str, name: str, value: object, *, low: int, high: int | None = None) -> int:
    """``value`` as an int in ``[low, high]``; ConfigError naming ``rule.name`` and the range."""
    allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{rule}: {name} must be {allowed}, got {value!r}")
    if value < low or (high is not None and value > high):
        raise ConfigError(f"{rule}: {name} must be {allowed}, got {value!r}")
    return value


def boolean(rule: str, name: str, value: object) -> bool:
    """``value`` as a bool; ConfigError naming ``rule.name`` otherwise (no truthy strings)."""
    if not isinstance(value, bool):
        raise ConfigError(f"{rule}: {name} must be true or false, got {value!r}")
    return value


def make_aggregate(
    updates: Sequence[Update],
    weights: StateDict,
    scores: Sequence[float],
    state: StateDict | None = None,
) -> Aggregate:
    """An Aggregate whose ``accepted`` are the members with a score above 0, in input order."""
    clipped = [min(1.0, max(0.0, s)) for s in scores]
    return Aggregate(
        weights=weights,
        accepted=tuple(u.member for u, s in zip(updates, clipped, strict=True) if s > 0),
        scores={u.member: s for u, s in zip(updates, clipped, strict=True)},
        state=state if state is not None else {},
    )


def zeros_like_model(weights: Mapping[str, torch.Tensor], prefix: str) -> StateDict:
    """Float32 zeros named ``prefix + key`` for every tensor of a model."""
    return {
        prefix + k: torch.zeros(v.shape, dtype=torch.float32) for k, v in sorted(weights.items())
    }
