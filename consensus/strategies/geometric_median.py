"""Geometric median by smoothed Weiszfeld steps (Pillutla et al., "Robust Aggregation for
Federated Learning", IEEE TSP 2022: RFA), with equal member weights by default.

Weighting by the sample counts members report (``weighted = true``) lets one member that holds,
or claims, a large share of the data drag the result: the geometric median resists a minority of
the *weight*, not of the members.  Equal weights resist any minority of members.

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
from consensus.strategies.params import boolean, integer, make_aggregate, real


class GeometricMedian(AggregationRule):
    """``iterations`` in [0, 1000] Weiszfeld steps (default 8), smoothing ``eps`` > 0 (1e-6),
    ``weighted`` by sample counts (default false)."""

    name = "geometric-median"

    def __init__(self, iterations: int = 8, eps: float = 1e-6, weighted: bool = False) -> None:
        self.iterations = integer(self.name, "iterations", iterations, low=0, high=1000)
        self.eps = real(self.name, "eps", eps, low=0.0, low_open=True)
        self.weighted = boolean(self.name, "weighted", weighted)

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        vectors = update_vectors(updates, keys)
        z, betas = weiszfeld(
            vectors,
            [float(u.num_samples) if self.weighted else 1.0 for u in updates],
            self.iterations,
            self.eps,
        )
        top = max(betas)
        return make_aggregate(
            updates, unflatten(z, updates[0].weights, keys), [b / top for b in betas]
        )

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "iterations": self.iterations,
            "eps": self.eps,
            "weighted": self.weighted,
        }
