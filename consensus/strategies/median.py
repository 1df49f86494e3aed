"""Coordinate-wise median (Yin et al., "Byzantine-Robust Distributed Learning", ICML 2018).

Per coordinate, the middle value of the updates; for an even count the float64 mean
``(lo + hi) / 2`` of the two middle values (as ``numpy.median``).  Sample counts are not used:
a weighted median would let one member claim a majority by reporting many samples.

Determinism: sorting along the member axis is exact (no arithmetic), the even-count mean is
one element-wise add and divide in float64, and the result is cast to float32 once.  A
member's score is the fraction of coordinates where its value lies between the two middle
values (inclusive, so equal values share credit), counted with integers.
"""

from __future__ import annotations

from collections.abc import Sequence

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.kernels import (
    check_updates,
    coordinate_median,
    inside_fraction,
    unflatten,
    update_vectors,
)
from consensus.strategies.params import make_aggregate


class Median(AggregationRule):
    """Coordinate-wise median of the updates; no parameters."""

    name = "median"

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        vectors = update_vectors(updates, keys)
        median, lo, hi = coordinate_median(vectors)
        weights = unflatten(median, updates[0].weights, keys)
        return make_aggregate(updates, weights, inside_fraction(vectors, lo, hi))
