"""What every peer feeds an aggregation rule: canonical order, the round's seed, the context."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import torch

from consensus.strategies.abc import RoundContext, StateDict, Update
from consensus.strategies.fedavg import FedAvg

_SEED_DOMAIN = b"fedchain/aggregation-seed/v1"


def canonical_order(updates: Sequence[tuple[bytes, Update]]) -> list[Update]:
    """The accepted updates in the order every rule receives them: by update digest.

    Chain order depends on how transactions were mined; the digest order does not, so every
    peer, an in-process simulator and an auditor feed the same sequence to the rule and get
    the same aggregate bytes.  (Copy detection still keeps the first copy in chain order.)
    """
    return [u for _, u in sorted(updates, key=lambda du: (du[0], du[1].member.lower()))]


def aggregation_seed(task_id: int, round_no: int, model_digest: bytes) -> int:
    """``int.from_bytes(sha256(domain 0 task 0 round 0 digest)[:8]) >> 1``.

    Every input is on-chain before any update is submitted (the round's global-model digest is
    the previous round's agreed aggregate), so no member can steer the seed with its update.
    """
    message = b"\x00".join(
        [_SEED_DOMAIN, str(task_id).encode(), str(round_no).encode(), model_digest]
    )
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") >> 1


def fedavg(updates: Sequence[tuple[Mapping[str, torch.Tensor], int]]) -> StateDict:
    """FedAvg over ``(weights, num_samples)`` pairs in the given order (for in-process use)."""
    wrapped = [Update(member=str(i), weights=w, num_samples=n) for i, (w, n) in enumerate(updates)]
    ctx = RoundContext(round=1, previous=wrapped[0].weights if wrapped else {}, seed=0)
    return FedAvg().aggregate(wrapped, ctx).weights
