"""Federated averaging weighted by sample counts, bit-identical on every peer.

Determinism comes from three fixed choices: updates are taken in the order given,
which the node makes canonical (sorted by update digest, not chain order, so
transaction ordering cannot change the result), arithmetic is done in float64 as
separate multiply and add steps (no fused multiply-add, no reductions whose order
could vary), and the result is cast to float32 once at the end.  Any auditor can
reproduce it with NumPy, summing in digest order:
``sum_i(float64(w_i) * n_i) / sum_i(n_i)`` then ``float32``.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.kernels import check_updates, weighted_mean

__all__ = ["FedAvg", "check_updates", "weighted_mean"]


class FedAvg(AggregationRule):
    """Weighted mean of the updates, weights proportional to ``num_samples``."""

    name = "fedavg"

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, "FedAvg")
        weights = weighted_mean(
            [u.weights for u in updates], [float(u.num_samples) for u in updates], keys
        )
        return Aggregate(
            weights=weights,
            accepted=tuple(u.member for u in updates),
            scores={u.member: 1.0 for u in updates},
        )
