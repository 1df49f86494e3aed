"""Typed views of what the Federation contract stores and returns.

Enum values mirror the contract's enums; ``RoundStatus`` is the one defined with the
round protocol (:mod:`consensus.protocol`), re-exported here.  Digests and CIDs are
``bytes``; addresses are checksummed strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, NamedTuple, TypeVar

from consensus.protocol import RoundStatus
from peer.ledger.events import ContractEvent

__all__ = [
    "ProposalInfo",
    "ProposalKind",
    "RoundInfo",
    "RoundStatus",
    "Submission",
    "TaskInfo",
    "TaskStatus",
    "TxResult",
]

E = TypeVar("E", bound=ContractEvent)


class TaskStatus(IntEnum):
    NONE = 0
    ACTIVE = 1
    COMPLETED = 2


class ProposalKind(IntEnum):
    ADMIT = 0
    REMOVE = 1


@dataclass(frozen=True)
class TaskInfo:
    task_id: int
    spec_digest: bytes
    quorum: int
    round_duration: int
    attest_duration: int
    num_rounds: int
    """Rounds to finalize before the task completes (failed rounds do not count)."""
    current_round: int
    last_finalized_round: int
    finalized_rounds: int
    global_model_digest: bytes
    """Digest of the latest agreed model (the initial model before any round finalized)."""
    status: TaskStatus
    max_samples: int
    """Most training samples one update may claim; the contract refuses more (SamplesAboveCap)."""

    @property
    def completed(self) -> bool:
        return self.status is TaskStatus.COMPLETED


@dataclass(frozen=True)
class RoundInfo:
    """One round, as storage and (for rounds that ended) the round's events describe it."""

    task_id: int
    round: int
    status: RoundStatus
    model_digest: bytes
    """The global model the round trains from."""
    submit_deadline: int
    attest_deadline: int
    eligible: int
    """Members at the time the round opened (only they may submit and attest)."""
    need: int
    """Updates to close the set, and identical attestations to finalize: max(quorum,
    eligible // 2 + 1) capped at ``eligible``.  Storage keeps it for the open round only (0 once
    the round ended)."""
    submissions: int
    aggregate_digest: bytes
    """Zero until the round finalizes."""
    scores_digest: bytes
    """Merkle root of the agreed contribution scores; zero until the round finalizes."""
    finalized_block: int | None = None


class Submission(NamedTuple):
    """One accepted update, in chain order (block, log index)."""

    member: str
    digest: bytes
    cid: bytes
    num_samples: int


@dataclass(frozen=True)
class ProposalInfo:
    proposal_id: int
    kind: ProposalKind
    account: str
    peer_id: str
    metadata_digest: bytes
    proposer: str
    approvals: int
    member_count_at_proposal: int
    expires_at: int
    executed: bool
    encryption_key: bytes = bytes(32)
    """The X25519 public key an admission registers (zero for a removal or none)."""


@dataclass(frozen=True)
class TxResult:
    """A mined, successful transaction and the contract events it emitted."""

    tx_hash: str
    block_number: int
    gas_used: int
    receipt: dict[str, Any] = field(repr=False)
    events: tuple[ContractEvent, ...]

    def event(self, kind: type[E]) -> E:
        """The first event of type ``kind``; KeyError if the transaction emitted none."""
        for ev in self.events:
            if isinstance(ev, kind):
                return ev
        raise KeyError(f"transaction {self.tx_hash} emitted no {kind.__name__}")

    def events_of(self, kind: type[E]) -> list[E]:
        return [ev for ev in self.events if isinstance(ev, kind)]
