"""One round of secure aggregation: mask a member's update; unmask the round's sum.

Each member masks toward every *expected* member of the round (those eligible when it opened),
because it cannot know in advance who will submit.  Masks between two members that both
submitted cancel in the sum.  A member that was expected but did not submit leaves its
partners' masks toward it in the sum; each submitter then reveals its pair seed with that
member, and only that: never its own key, never a seed shared with another submitter.  So the
unmasked sum still hides every individual update, and nobody learns more than the sum.

The classical caveat: if a member were declared dropped and its masked update used anyway (it
arrived late), the revealed seeds would strip its masks and expose it.  Here the set of updates
is closed on the chain before any seed is revealed: :func:`unmask_sum` takes exactly the closed
set's updates, reveals are accepted only for members outside it, and an update outside it is
never used, so a late update is never unmasked.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from consensus.secagg.fixed_point import FixedPoint, Residues
from consensus.secagg.masks import pair_context, pair_seed, signed_mask
from fedchain.errors import ProtocolError


@dataclass(frozen=True)
class RoundKeys:
    """Who a round's masks are computed toward: each expected member's X25519 public key."""

    task_id: int
    round: int
    publics: Mapping[str, bytes]
    """Lower-case address -> 32-byte public key of every expected member."""

    def members(self) -> list[str]:
        return sorted(self.publics)


@dataclass(frozen=True)
class Reveal:
    """A submitter's pair seed with a member that did not submit (32 bytes)."""

    revealer: str
    dropped: str
    seed: bytes


@dataclass(frozen=True)
class SecureSum:
    """The unmasked round: the weighted mean change and the sum of weights."""

    mean_change: npt.NDArray[np.float64]
    total_weight: int


def encode_with_weight(fp: FixedPoint, change: npt.NDArray[np.float64], weight: int) -> Residues:
    """The member's weighted fixed-point change with its weight appended (both get masked)."""
    return np.concatenate([fp.encode(change, weight), np.array([weight], dtype=np.uint64)])


def mask_update(encoded: Residues, me: str, my_secret: bytes, keys: RoundKeys) -> Residues:
    """``encoded`` plus this member's masks toward every other expected member, mod 2**64."""
    me = me.lower()
    if me not in keys.publics:
        raise ProtocolError(f"{me} is not an expected member of round {keys.round}")
    masked = encoded.copy()
    for other in keys.members():
        if other == me:
            continue
        seed = pair_seed(my_secret, keys.publics[other], _context(keys, me, other))
        masked += signed_mask(seed, me, other, encoded.size)
    return masked


def reveals_for(
    me: str, my_secret: bytes, keys: RoundKeys, submitted: Collection[str]
) -> list[Reveal]:
    """This submitter's reveals: its pair seed with each expected member not in ``submitted``
    (the chain's closed update set), and nothing else."""
    me, done = me.lower(), {m.lower() for m in submitted}
    if me not in done:
        raise ProtocolError(f"{me} did not submit in round {keys.round}; it reveals nothing")
    return [
        Reveal(me, d, pair_seed(my_secret, keys.publics[d], _context(keys, me, d)))
        for d in keys.members()
        if d not in done
    ]


def unmask_sum(
    fp: FixedPoint,
    masked: Mapping[str, Residues],
    reveals: Sequence[Reveal],
    keys: RoundKeys,
) -> SecureSum:
    """The weighted mean change of the closed set ``masked`` (member -> masked update).

    ProtocolError if an update is from an unexpected member, a needed reveal is missing, or a
    reveal concerns a member that submitted (such a seed would strip a used update's mask).
    """
    if not masked:
        raise ProtocolError(f"round {keys.round} has no masked update to sum")
    subs = {m.lower(): v for m, v in masked.items()}
    strangers = sorted(set(subs) - set(keys.publics))
    if strangers:
        raise ProtocolError(f"updates from members not expected in round {keys.round}: {strangers}")
    length = next(iter(subs.values())).size
    total = np.zeros(length, dtype=np.uint64)
    for member in sorted(subs):  # the order does not matter mod 2**64; sorted for readers
        if subs[member].size != length:
            raise ProtocolError(
                f"the masked update of {member} has {subs[member].size} values, not {length}"
            )
        total += subs[member]
    seeds: dict[tuple[str, str], bytes] = {}
    for r in reveals:
        pair = (r.revealer.lower(), r.dropped.lower())
        if pair[1] in subs or pair[0] not in subs:
            raise ProtocolError(
                f"refused reveal by {r.revealer} for {r.dropped}: only a submitter's seed with a "
                "member that did not submit may be revealed"
            )
        seeds[pair] = r.seed
    dropped = [d for d in keys.members() if d not in subs]
    missing = [(s, d) for d in dropped for s in sorted(subs) if (s, d) not in seeds]
    if missing:
        raise ProtocolError(
            "cannot unmask without the pair seeds of "
            + ", ".join(f"{s} with {d}" for s, d in missing)
        )
    for d in dropped:
        for s in sorted(subs):
            total -= signed_mask(seeds[(s, d)], s, d, length)
    weight = int(total[-1].astype(np.int64))
    return SecureSum(fp.decode_mean(total[:-1], weight), weight)


def fixed_point_fedavg(
    fp: FixedPoint, changes: Sequence[npt.NDArray[np.float64]], weights: Sequence[int]
) -> SecureSum:
    """The reference: FedAvg of the same changes in the same fixed point, without masks."""
    total = sum(
        (encode_with_weight(fp, c, w) for c, w in zip(changes, weights, strict=True)),
        start=np.zeros(changes[0].size + 1, dtype=np.uint64),
    )
    weight = int(total[-1].astype(np.int64))
    return SecureSum(fp.decode_mean(total[:-1], weight), weight)


def check_mean(fp: FixedPoint, result: SecureSum, expected_weight: int) -> None:
    """What can be checked of the sum alone: its weight equals the on-chain sample counts, and
    its mean change is no longer than ``clip_norm`` (a mean of clipped changes cannot be), up to
    the rounding of the encoding.  ProtocolError otherwise: some member sent values outside the
    agreed range (which one cannot be known)."""
    if result.total_weight != expected_weight:
        raise ProtocolError(
            f"the unmasked weights sum to {result.total_weight}, not the {expected_weight} "
            "samples recorded on the chain"
        )
    slack = np.sqrt(result.mean_change.size) / fp.scale
    norm = float(np.sqrt(np.sum(result.mean_change * result.mean_change)))
    if norm > fp.clip_norm + slack:
        raise ProtocolError(
            f"the unmasked mean change has norm {norm:.4g}, over the agreed clip_norm "
            f"{fp.clip_norm:g}: a member sent values it did not clip"
        )


def _context(keys: RoundKeys, a: str, b: str) -> bytes:
    return pair_context(keys.task_id, keys.round, a, b)
