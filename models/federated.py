"""Federated averaging, in process, through the project's own aggregation code.

Each round every site starts from the current global weights, trains locally with the one
trainer (``models.training.train`` with ``TrainingSettings``) and hands back its state dict and
sample count; the new global model is ``consensus.aggregation.fedavg`` of those updates in site
order — the same function the peers run after a networked round, so benchmark numbers describe
the real aggregation.

A site that lacks a modality returns that modality's encoder unchanged (it gets no gradient),
exactly as it would over the network.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

from consensus.aggregation import fedavg
from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError
from models.sites import Site
from models.training import train

RoundCallback = Callable[[int, nn.Module], None]


def site_seed(seed: int, round_index: int, site_index: int) -> int:
    """A distinct, reproducible training seed for each (run, round, site)."""
    return (seed * 1_000_003 + round_index * 1_009 + site_index) % (2**63)


def float_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state as detached float32 tensors (what a peer would publish)."""
    state = {}
    for key, tensor in model.state_dict().items():
        if not torch.is_floating_point(tensor):
            raise ConfigError(f"state entry {key!r} is {tensor.dtype}; peers exchange float32 only")
        state[key] = tensor.detach().to(torch.float32).clone()
    return state


def fedavg_round(
    model: nn.Module, sites: Sequence[Site], local: TrainingSettings, seed: int, round_index: int
) -> float:
    """One round: local training at every site, then FedAvg into ``model``; mean site loss."""
    updates: list[tuple[dict[str, torch.Tensor], int]] = []
    losses: list[float] = []
    for index, site in enumerate(sites):
        replica = copy.deepcopy(model)
        loss = train(replica, site.samples, local, seed=site_seed(seed, round_index, index))
        updates.append((float_state(replica), site.size))
        losses.append(loss * site.size)
    model.load_state_dict(fedavg(updates))
    return sum(losses) / sum(site.size for site in sites)


def run_fedavg(
    model: nn.Module,
    sites: Sequence[Site],
    *,
    rounds: int,
    local: TrainingSettings,
    seed: int,
    on_round: RoundCallback | None = None,
) -> list[float]:
    """Train ``model`` in place for ``rounds`` rounds; returns each round's mean site loss."""
    if rounds < 1:
        raise ConfigError(f"rounds must be >= 1, got {rounds}")
    if not sites:
        raise ConfigError("a federation needs at least one site")
    history = []
    for round_index in range(rounds):
        history.append(fedavg_round(model, sites, local, seed, round_index))
        if on_round is not None:
            on_round(round_index, model)
    model.eval()
    return history
