"""Coordinate-wise trimmed mean (Yin et al., "Byzantine-Robust Distributed Learning", 2018).

Per coordinate, the ``k = floor(trim * n)`` smallest and ``k`` largest values are dropped and
the remaining ``n - 2k`` averaged, unweighted (sample counts could be inflated by an attacker).

Determinism: the sort along the member axis is exact; the kept values are added one sorted row
at a time in ascending order in float64, divided by their count and cast to float32 once
(NumPy: sort axis 0, slice, add rows in order, divide).  ``floor(trim * n)`` is one IEEE
multiply.  A member's score is the fraction of coordinates where its value lies within the
kept range (smallest to largest kept value, inclusive), counted with integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.kernels import (
    check_updates,
    inside_fraction,
    trimmed_mean,
    unflatten,
    update_vectors,
)
from consensus.strategies.params import make_aggregate, real


class TrimmedMean(AggregationRule):
    """Trims the fraction ``trim`` in [0, 0.5) (default 0.2) from each end per coordinate."""

    name = "trimmed-mean"

    def __init__(self, trim: float = 0.2) -> None:
        self.trim = real(self.name, "trim", trim, low=0.0, high=0.5, high_open=True)

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        vectors = update_vectors(updates, keys)
        mean, lo, hi = trimmed_mean(vectors, math.floor(self.trim * len(vectors)))
        weights = unflatten(mean, updates[0].weights, keys)
        return make_aggregate(updates, weights, inside_fraction(vectors, lo, hi))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "trim": self.trim}
