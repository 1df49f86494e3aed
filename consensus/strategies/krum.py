"""Krum and Multi-Krum (Blanchard et al., NeurIPS 2017; El Mhamdi et al., ICML 2018).

With ``n`` updates of which up to ``f`` may be Byzantine, each update's score is the sum of its
squared distances to its ``n - f - 2`` nearest other updates; the ``m`` lowest-scoring updates
are averaged with FedAvg weights (sample counts), in input order.  Krum is ``m = 1``.  The
guarantee needs ``n >= 2f + 3``.  With fewer (4 hospitals tolerating 1), each score still
counts the ``n - f - 2 >= 1`` nearest others, which keeps one far outlier out but no longer
carries the proof; with ``n < f + 3`` (members already left out by the checks, say) there is no
neighbour to compare for that ``f``, so ``f`` is lowered to ``max(0, n - 3)`` for the round
(refusing would fail every such round; with 3 updates left, all are averaged).
``m`` is capped at ``n - f``, so at least ``f`` updates are always left out.

Determinism: squared distances are correctly rounded sums (``math.fsum``) of element-wise
float64 squares, computed once per pair; a score adds the ascending nearest distances in that
order; ties between scores go to the earlier update (canonical order); the FedAvg of the
selected updates is float64 in input order with one cast to float32.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.kernels import (
    check_updates,
    pairwise_sq_distances_by_blocks,
    weight_blocks,
    weighted_mean,
)
from consensus.strategies.params import integer, make_aggregate


def krum_scores(distances: Sequence[Sequence[float]], f: int) -> list[float]:
    """Each member's sum of squared distances to its ``n - f - 2`` nearest others."""
    n = len(distances)
    near = n - f - 2
    scores = []
    for i, row in enumerate(distances):
        others = sorted(d for j, d in enumerate(row) if j != i)
        total = 0.0
        for d in others[:near]:
            total += d
        scores.append(total)
    return scores


class MultiKrum(AggregationRule):
    """``byzantine`` f >= 0 (default 1); ``keep`` m >= 1 averaged (default: ``n - f``)."""

    name = "multi-krum"

    def __init__(self, byzantine: int = 1, keep: int | None = None) -> None:
        self.byzantine = integer(self.name, "byzantine", byzantine, low=0)
        self.keep = None if keep is None else integer(self.name, "keep", keep, low=1)

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        n, f = len(updates), self.byzantine
        if n < f + 3:
            f = max(0, n - 3)
        distances = pairwise_sq_distances_by_blocks(weight_blocks(updates, keys), n)
        scores = krum_scores(distances, f)
        keep = min(n - f, n - f if self.keep is None else self.keep)
        ranked = sorted(range(n), key=lambda i: (scores[i], i))
        chosen = sorted(ranked[:keep])
        weights = weighted_mean(
            [updates[i].weights for i in chosen],
            [float(updates[i].num_samples) for i in chosen],
            keys,
        )
        selected = set(chosen)
        return make_aggregate(updates, weights, [1.0 if i in selected else 0.0 for i in range(n)])

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "byzantine": self.byzantine, "keep": self.keep}


class Krum(MultiKrum):
    """The single lowest-scoring update (Multi-Krum with ``keep = 1``); ``byzantine`` f >= 0."""

    name = "krum"

    def __init__(self, byzantine: int = 1) -> None:
        super().__init__(byzantine=byzantine, keep=1)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "byzantine": self.byzantine}
