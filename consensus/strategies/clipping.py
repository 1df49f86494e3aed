"""Norm clipping around any rule: each update's change from the round's global model is scaled
down to an L2 norm of at most a bound, then the inner rule aggregates the clipped updates.

The bound is either absolute (``max_norm``) or ``median_multiple`` times the median of the
round's change norms (even count: mean of the two middle norms).  An update within the bound
is passed on untouched; a longer one becomes ``float32(previous + change * (bound / norm))``.
A member's score is the inner rule's score times its clip factor ``min(1, bound / norm)``.

Determinism: changes are float64 differences, norms are ``sqrt`` of correctly rounded sums
(``math.fsum``), the bound and factors are scalar IEEE operations, scaling is element-wise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, RuleWrapper, Update
from consensus.strategies.kernels import (
    check_updates,
    deltas,
    flatten,
    l2_norm,
    median_of_floats,
    unflatten,
)
from consensus.strategies.params import make_aggregate, real
from fedchain.errors import ConfigError


class NormClip(RuleWrapper):
    """Exactly one of ``max_norm`` > 0 or ``median_multiple`` > 0."""

    name = "norm-clip"

    def __init__(
        self,
        inner: AggregationRule,
        max_norm: float | None = None,
        median_multiple: float | None = None,
    ) -> None:
        super().__init__(inner)
        if (max_norm is None) == (median_multiple is None):
            raise ConfigError(
                f"{self.name}: give exactly one of max_norm (absolute bound > 0) or "
                "median_multiple (> 0 times the round's median change norm)"
            )
        self.max_norm = (
            None
            if max_norm is None
            else real(self.name, "max_norm", max_norm, low=0.0, low_open=True)
        )
        self.median_multiple = (
            None
            if median_multiple is None
            else real(self.name, "median_multiple", median_multiple, low=0.0, low_open=True)
        )

    def bound(self, norms: Sequence[float]) -> float:
        if self.max_norm is not None:
            return self.max_norm
        assert self.median_multiple is not None
        return self.median_multiple * median_of_floats(norms)

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        changes = deltas(updates, ctx.previous, keys)
        norms = [l2_norm(c) for c in changes]
        bound = self.bound(norms)
        base = flatten(ctx.previous, keys)
        clipped: list[Update] = []
        factors: list[float] = []
        for u, change, norm in zip(updates, changes, norms, strict=True):
            if norm <= bound:
                clipped.append(u)
                factors.append(1.0)
                continue
            factor = bound / norm
            weights = unflatten(base + change * factor, u.weights, keys)
            clipped.append(Update(member=u.member, weights=weights, num_samples=u.num_samples))
            factors.append(factor)
        inner = self.inner.aggregate(clipped, ctx)
        scores = [
            inner.scores.get(u.member, 0.0) * f for u, f in zip(updates, factors, strict=True)
        ]
        return make_aggregate(updates, inner.weights, scores, inner.state)

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "max_norm": self.max_norm,
            "median_multiple": self.median_multiple,
        }
