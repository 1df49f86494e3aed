"""Rules that leave an update out before aggregation, decided from the chain alone.

These run before any content is fetched, so every honest peer and any auditor
reaches the same verdict from the ``UpdateSubmitted`` events and the round's
model digest:

* an update whose digest equals the round's global model is the model sent back
  untrained (a free rider);
* an update byte-identical to one submitted earlier in the same round (same
  digest) is a copy: the earliest submission in chain order keeps it, because an
  update's CID is only announced after its submission is on-chain, so a copier
  cannot get ahead of the member that trained it.

Content-level checks (names, shapes, dtypes, finiteness, magnitude, all-zero
weights) need the bytes and live in :mod:`consensus.serialization` and below.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from consensus.strategies.abc import Update
from consensus.strategies.kernels import ExactSum, change_blocks, median_of_floats
from fedchain.errors import ProtocolError


@dataclass(frozen=True)
class SubmittedDigest:
    """The chain's record of one submission: who, which content digest, in chain order."""

    member: str
    digest: bytes


def chain_verdicts(subs: Sequence[SubmittedDigest], model_digest: bytes) -> dict[str, str]:
    """Members whose update is left out by the chain-only rules, with the reason for each."""
    left_out: dict[str, str] = {}
    first_by_digest: dict[bytes, str] = {}
    for sub in subs:
        if sub.digest == model_digest:
            left_out[sub.member] = "free rider: the update is the round's global model unchanged"
            continue
        original = first_by_digest.setdefault(sub.digest, sub.member)
        if original != sub.member:
            left_out[sub.member] = f"copy: byte-identical to the update of {original}"
    return left_out


def largest_magnitude(weights: Mapping[str, torch.Tensor]) -> float:
    """The largest absolute value in the update (0 for an empty one)."""
    return max((float(t.abs().max()) for t in weights.values() if t.numel()), default=0.0)


def all_zero(weights: Mapping[str, torch.Tensor]) -> bool:
    """True when every tensor of the update is zero (no information, nothing to credit)."""
    return all(not bool(t.any()) for t in weights.values())


def non_finite(weights: Mapping[str, torch.Tensor]) -> list[str]:
    """Names of the tensors holding a NaN or an infinity (a trained model must have none)."""
    return [k for k, v in weights.items() if not bool(torch.isfinite(v).all())]


def change_norm_outliers(
    updates: Sequence[Update], previous: Mapping[str, torch.Tensor], ratio: float
) -> dict[str, str]:
    """Members whose change from the global model exceeds ``ratio`` x the round's median change.

    The median is over every checked update of the round, so a minority cannot move it far.
    """
    if not updates:
        return {}
    squares = [ExactSum() for _ in updates]
    for block in change_blocks(updates, previous, sorted(previous)):  # no model-sized copies
        for total, change in zip(squares, block, strict=True):
            if not total.add(change * change):
                raise ProtocolError("a change holds a non-finite or huge value")
    norms = {u.member: math.sqrt(t.value()) for u, t in zip(updates, squares, strict=True)}
    mid = median_of_floats(list(norms.values()))
    return {
        m: f"its change has norm {n:.4g}, over {ratio:g}x the round's median {mid:.4g} "
        "(max_update_norm_ratio in the task spec)"
        for m, n in norms.items()
        if n > ratio * mid
    }
