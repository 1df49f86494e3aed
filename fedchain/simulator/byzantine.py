"""Byzantine members of a simulated federation: who they are and what they may see.

:func:`byzantine_members` picks ``k`` of the virtual institutions reproducibly from the run's
seed (not simply the first ``k``: a task's partitions are listed in a meaningful order).  Their
learners are wrapped in :class:`~fedchain.attacks.learner.ByzantineLearner`.

Attacks that declare ``needs_honest_updates`` get the honest members' updates of the same
round, read as any member could read them: the round's submissions on the (in-memory) chain,
their content fetched from the Byzantine member's own content store and decoded with the
task's encoding, in member-name order.
For those updates to be there, :class:`~fedchain.simulator.federation.VirtualFederation`
steps the Byzantine peers only in passes in which no honest peer acted, so every running
honest peer has trained and submitted before a Byzantine one trains.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from consensus.serialization import agreed_model_from_bytes
from fedchain.attacks import Attack, ByzantineLearner
from fedchain.attacks.abc import Weights
from fedchain.errors import ConfigError
from models.tasks import Learner
from peer.content.cid import cid_from_bytes

if TYPE_CHECKING:
    from fedchain.simulator.federation import VirtualFederation

_DOMAIN = b"fedchain/byzantine-members/v1"


def byzantine_members(names: Sequence[str], k: int, seed: int) -> list[str]:
    """``k`` of ``names`` chosen from ``seed`` (by sha256 of domain, seed and name), in the
    order of ``names``."""
    if not 0 <= k <= len(names):
        raise ConfigError(f"--byzantine must be between 0 and the {len(names)} peers, got {k}")

    def rank(name: str) -> bytes:
        return hashlib.sha256(b"\x00".join([_DOMAIN, str(seed).encode(), name.encode()])).digest()

    chosen = set(sorted(names, key=rank)[:k])
    return [n for n in names if n in chosen]


@dataclass
class HonestUpdateReader:
    """Round -> the honest members' submitted updates, as ``member`` reads them."""

    member: str
    honest: Sequence[str]
    federation: VirtualFederation | None = field(default=None, repr=False)
    timeout: float = 5.0

    def __call__(self, round_no: int) -> tuple[Weights, ...]:
        fed = self.federation
        assert fed is not None, "the reader is bound to its federation after it is built"
        peers = fed.peers
        by_address = {peers[n].identity.address.lower(): n for n in self.honest}
        own = peers[self.member]
        reference = own.learner.reference_weights()
        encoding = fed.spec.encoding.build()
        previous = None
        if not encoding.plain:  # encoded updates are changes from the round's global model
            digest = fed.deployer.round_info(fed.task_id, round_no).model_digest
            model = own.content.get(
                fed.deployer.model_cid(fed.task_id, digest), timeout=self.timeout
            )
            previous = agreed_model_from_bytes(model, reference=reference)
        found: dict[str, Weights] = {}
        for sub in fed.deployer.submissions(fed.task_id, round_no):
            name = by_address.get(sub.member.lower())
            if name is None:
                continue
            data = own.content.get(cid_from_bytes(sub.cid), timeout=self.timeout)
            found[name] = encoding.decode(data, previous, reference)
        return tuple(found[n] for n in sorted(found))


@dataclass(frozen=True)
class Byzantine:
    """The Byzantine members of a run, their attack, and their wrapped learners."""

    members: list[str]
    attack: Attack
    learners: dict[str, ByzantineLearner]
    readers: list[HonestUpdateReader]

    def bind(self, federation: VirtualFederation) -> None:
        for reader in self.readers:
            reader.federation = federation

    def record(self, federation: VirtualFederation) -> dict[str, object]:
        """What record.json says about them."""
        return {
            "members": list(self.members),
            "addresses": {n: federation.peers[n].identity.address for n in self.members},
            "attack": self.attack.describe(),
            "sees_honest_updates": bool(self.readers),
        }


def make_byzantine(learners: Mapping[str, Learner], attack: Attack, k: int, seed: int) -> Byzantine:
    """Choose ``k`` members from ``seed`` and wrap their learners to play ``attack``."""
    names = list(learners)
    members = byzantine_members(names, k, seed)
    honest = [n for n in names if n not in members]
    wrapped: dict[str, ByzantineLearner] = {}
    readers: list[HonestUpdateReader] = []
    for name in members:
        reader = None
        if attack.needs_honest_updates:
            reader = HonestUpdateReader(name, honest)
            readers.append(reader)
        wrapped[name] = ByzantineLearner(
            learners[name], attack, member=name, seed=seed, honest_updates=reader
        )
    return Byzantine(members, attack, wrapped, readers)
