"""The one small interface every aggregation rule implements, and what a round hands it.

Aggregation must be a pure function of what the chain and IPFS hold, so that every honest
peer, and any auditor replaying the chain, computes the same bytes.  A rule receives:

* the accepted updates in canonical order (sorted by update digest, see
  :func:`consensus.aggregation.canonical_order`), never in chain order;
* a :class:`RoundContext`: the round number, the round's global model (what every update
  trained from), the rule's parameters from the task spec, the agreed rule state carried in
  the previous aggregate's content (FedAdam's moments, ...), and a seed derived from chain data
  (:func:`consensus.aggregation.aggregation_seed`), the only source of randomness a rule may use.

It returns an :class:`Aggregate`: the new weights, the members it used, per-member scores in
[0, 1] (how much of each update went into the result; recorded, and gating credit), and its new
state.  Cross-cutting features (clipping, differential privacy) wrap a rule
(:class:`RuleWrapper`) instead of subclassing it.  A rule whose algorithm has a client-side
half (FedProx's proximal term) declares it in :meth:`AggregationRule.client_hooks`; the
trainer applies it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

StateDict = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Update:
    """One member's contribution to a round."""

    member: str
    weights: Mapping[str, torch.Tensor]
    num_samples: int


@dataclass(frozen=True)
class RoundContext:
    """What a rule may know about the round besides the updates."""

    round: int
    previous: Mapping[str, torch.Tensor]
    """The round's global model: the weights every update was trained from."""
    seed: int
    """Derived from chain data (task, round, global-model digest); below 2**63."""
    state: Mapping[str, torch.Tensor] = field(default_factory=dict)
    """Agreed rule state from the previous aggregate (empty in round 1 and for stateless rules)."""


@dataclass(frozen=True)
class ClientHooks:
    """The client-side half of a rule, applied by the trainer on every member."""

    proximal_mu: float = 0.0
    """FedProx: add ``mu / 2 * ||w - w_global||^2`` to the local loss (0: off)."""


@dataclass(frozen=True)
class Aggregate:
    """A rule's result for one round."""

    weights: StateDict
    accepted: tuple[str, ...]
    """Members whose update went into ``weights``, in the input (canonical) order."""
    scores: Mapping[str, float]
    """Every input member's share of use in [0, 1]: 1 fully used, 0 rejected."""
    state: StateDict = field(default_factory=dict)
    """The rule's state after this round (empty for stateless rules); carried in the content."""


class AggregationRule(ABC):
    """Turns the ordered, already-validated updates of a round into the next global model.

    Subclasses set ``name`` (the registered name a task spec uses) and take their parameters as
    keyword arguments of ``__init__``, raising ``ConfigError`` naming a bad one.
    """

    name: ClassVar[str]

    @abstractmethod
    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        """Return the new global model; deterministic for a given input order and context."""

    def client_hooks(self) -> ClientHooks:
        """What members must do while training for this rule (default: nothing)."""
        return ClientHooks()

    def state_names(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Names, shapes and dtypes of this rule's state for a model (values meaningless).

        Used to validate the state read back from the agreed content; empty when stateless.
        """
        return {}

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for records and reports."""
        return {"name": self.name}


class RuleWrapper(AggregationRule):
    """A rule around another rule (clipping, ...); state and client hooks pass through."""

    def __init__(self, inner: AggregationRule) -> None:
        self.inner = inner

    def client_hooks(self) -> ClientHooks:
        return self.inner.client_hooks()

    def state_names(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return self.inner.state_names(weights)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "inner": self.inner.describe()}


# The previous name of the interface; kept so that third-party code importing it still works.
AggregationStrategy = AggregationRule
