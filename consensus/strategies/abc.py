"""The one small interface every aggregation rule implements.

Aggregation must be a pure function of the ordered updates so that every honest
peer, and any auditor replaying the chain, computes the same bytes.  The node hands
a strategy the accepted updates in canonical order (sorted by update digest, see
:func:`consensus.aggregation.canonical_order`), never in chain order.  Cross-cutting
features (clipping, robustness, differential privacy) wrap a strategy instead of
subclassing it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Update:
    """One member's contribution to a round."""

    member: str
    weights: Mapping[str, torch.Tensor]
    num_samples: int


class AggregationStrategy(ABC):
    """Turns the ordered, already-validated updates of a round into the next global model."""

    name: str

    @abstractmethod
    def aggregate(self, updates: Sequence[Update]) -> StateDict:
        """Return the new global weights; must be deterministic for a given input order."""
