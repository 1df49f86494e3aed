"""Geometric median by smoothed Weiszfeld steps (Pillutla et al., "Robust Aggregation for
Federated Learning", IEEE TSP 2022: RFA), weighted by sample counts.

Starts from the coordinate-wise median and runs exactly ``iterations`` steps
``beta_i = n_i / max(eps, ||w_i - z||)``, ``z = sum_i(beta_i w_i) / sum_i(beta_i)``.  A member's
score is its final ``beta_i`` over the largest (1 for the most central update).

Determinism: a fixed number of steps (no data-dependent stopping), distances as correctly
rounded sums (``math.fsum``), members summed in canonical order in float64, one cast to float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.kernels import check_updates, unflatten, update_vectors, weiszfeld
from consensus.strategies.params import integer, make_aggregate, real


class GeometricMedian(AggregationRule):
    """``iterations`` in [0, 1000] Weiszfeld steps (default 8), smoothing ``eps`` > 0 (1e-6)."""

    name = "geometric-median"

    def __init__(self, iterations: int = 8, eps: float = 1e-6) -> None:
        self.iterations = integer(self.name, "iterations", iterations, low=0, high=1000)
        self.eps = real(self.name, "eps", eps, low=0.0, low_open=True)

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        vectors = update_vectors(updates, keys)
        z, betas = weiszfeld(
            vectors, [float(u.num_samples) for u in updates], self.iterations, self.eps
        )
        top = max(betas)
        return make_aggregate(
            updates, unflatten(z, updates[0].weights, keys), [b / top for b in betas]
        )

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "iterations": self.iterations, "eps": self.eps}
