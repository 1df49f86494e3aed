"""Entry points for aggregation: pick a strategy by the name in the task spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from consensus.strategies.abc import AggregationStrategy, StateDict, Update
from consensus.strategies.fedavg import FedAvg
from fedchain.errors import ConfigError

_STRATEGIES: dict[str, type[AggregationStrategy]] = {FedAvg.name: FedAvg}


def build_strategy(name: str) -> AggregationStrategy:
    """Return the strategy a task spec names, or explain which names exist."""
    try:
        return _STRATEGIES[name]()
    except KeyError:
        known = ", ".join(sorted(_STRATEGIES))
        raise ConfigError(f"unknown aggregation rule {name!r}; known rules: {known}") from None


def canonical_order(updates: Sequence[tuple[bytes, Update]]) -> list[Update]:
    """The accepted updates in the order every strategy receives them: by update digest.

    Chain order depends on how transactions were mined; the digest order does not, so every
    peer, an in-process simulator and an auditor feed the same sequence to the strategy and get
    the same aggregate bytes.  (Copy detection still keeps the first copy in chain order.)
    """
    return [u for _, u in sorted(updates, key=lambda du: (du[0], du[1].member.lower()))]


def fedavg(updates: Sequence[tuple[Mapping[str, torch.Tensor], int]]) -> StateDict:
    """FedAvg over ``(weights, num_samples)`` pairs in the given order (for in-process use)."""
    wrapped = [Update(member=str(i), weights=w, num_samples=n) for i, (w, n) in enumerate(updates)]
    return FedAvg().aggregate(wrapped)
