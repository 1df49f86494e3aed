"""What the peer needs from the federation's ledger, independent of how it is reached.

Two implementations pass the same conformance suite (``tests/peer/ledger``):

- :class:`peer.ledger.client.FederationClient`: the Federation contract over JSON-RPC, on any
  EVM chain (Anvil and Ganache in the suite);
- :class:`peer.ledger.memory.MemoryFederation`: the contract's rules re-implemented in Python
  (:class:`peer.ledger.memory.MemoryChain`), for unit tests and the in-process simulator.

An implementation supplies the contract's functions and views one for one (the abstract
methods) and its event log (:meth:`FederationLedger.logs`).  What the contract keeps only in
its events -- each update's CID, past rounds' deadlines, the finalized aggregates -- is rebuilt
here, once, from :meth:`~FederationLedger.stored_round_info` and the logs, so both backends
report history the same way by construction.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol, TypeVar

from fedchain.errors import LedgerError
from peer.content.cid import cid_from_bytes
from peer.ledger.events import (
    AggregateAttested,
    ContractEvent,
    RoundFinalized,
    RoundOpened,
    TaskCreated,
    UpdatesClosed,
    UpdateSubmitted,
)
from peer.ledger.types import (
    ProposalInfo,
    ProposalKind,
    RoundInfo,
    RoundStatus,
    Submission,
    TaskInfo,
    TxResult,
)

E = TypeVar("E", bound=ContractEvent)

ZERO32 = bytes(32)


class HasAddress(Protocol):
    """An account as the ledger needs it: an address (an eth_account ``LocalAccount`` is one)."""

    @property
    def address(self) -> str: ...


class FederationLedger(ABC):
    """Reads and writes of one federation contract on behalf of one account.

    Writes act as :attr:`account` (a member, or an outsider whose writes are refused with
    :class:`~peer.ledger.errors.NotMember`), return a :class:`TxResult` (or the new id for
    ``propose``/``create_task``; the result is then in :attr:`last_result`), and raise the
    :mod:`peer.ledger.errors` class named like the contract's custom error when refused.
    Addresses are returned checksummed; digests and binary CIDs are ``bytes``.
    """

    address: str
    """The federation contract's address."""
    chain_id: int
    account: HasAddress
    """The account this handle acts for."""
    last_result: TxResult | None
    """The latest successful write made through this handle."""

    @property
    def account_address(self) -> str:
        """Checksummed address of the account this handle acts for."""
        return str(self.account.address)

    # -- chain -------------------------------------------------------------------------------
    @abstractmethod
    def block_number(self) -> int:
        """Number of the chain's latest block."""

    @abstractmethod
    def logs(
        self,
        kinds: Iterable[type[ContractEvent]],
        *topics: int | str | None,
        from_block: int = 0,
    ) -> list[ContractEvent]:
        """This contract's events of the given kinds, filtered by indexed arguments in order
        (None = any; ints are indexed ``uint``s such as task id and round, strings are
        addresses), in chain order (block, log index)."""

    def events(self, kind: type[E], *topics: int | str | None, from_block: int = 0) -> list[E]:
        """Events of one kind, filtered by indexed arguments (see :meth:`logs`)."""
        return [e for e in self.logs([kind], *topics, from_block=from_block) if isinstance(e, kind)]

    # -- membership --------------------------------------------------------------------------
    @abstractmethod
    def is_member(self, account: str) -> bool: ...

    @abstractmethod
    def member_count(self) -> int: ...

    @abstractmethod
    def peer_id_of(self, account: str) -> str:
        """The libp2p peer ID registered for ``account`` ("" for a non-member)."""

    @abstractmethod
    def member_by_peer_id(self, peer_id: str) -> str | None: ...

    @abstractmethod
    def members(self) -> list[str]:
        """Current members, in the contract's order (removal moves the last into the gap)."""

    @abstractmethod
    def approval_bps(self) -> int: ...

    # -- encryption keys (members-only weights) ----------------------------------------------
    @abstractmethod
    def encryption_key_of(self, account: str) -> bytes:
        """``account``'s registered X25519 public key (32 zero bytes if none)."""

    @abstractmethod
    def audit_key(self) -> bytes:
        """The federation's audit X25519 public key, fixed at deployment (zeros: none)."""

    @abstractmethod
    def set_encryption_key(self, key: bytes) -> TxResult:
        """Rotate this member's X25519 public key (rounds opened afterwards use it)."""

    # -- governance --------------------------------------------------------------------------
    @abstractmethod
    def propose(
        self,
        kind: ProposalKind,
        account: str,
        peer_id: str = "",
        metadata_digest: bytes = ZERO32,
        encryption_key: bytes = ZERO32,
    ) -> int:
        """Propose to admit (with its X25519 ``encryption_key``) or remove ``account``; return
        the proposal id (see ``last_result``)."""

    @abstractmethod
    def approve(self, proposal_id: int) -> TxResult: ...

    @abstractmethod
    def proposal(self, proposal_id: int) -> ProposalInfo: ...

    @abstractmethod
    def has_approved(self, proposal_id: int, member: str) -> bool: ...

    # -- tasks -------------------------------------------------------------------------------
    @abstractmethod
    def create_task(
        self,
        spec_cid: bytes,
        initial_model_cid: bytes,
        quorum: int,
        round_duration: int,
        attest_duration: int,
        num_rounds: int,
        max_samples: int,
    ) -> int:
        """Create a task (round 1 opens at once); return its id (see ``last_result``)."""

    @abstractmethod
    def task_count(self) -> int: ...

    @abstractmethod
    def task(self, task_id: int) -> TaskInfo: ...

    def task_created(self, task_id: int) -> TaskCreated:
        found = self.events(TaskCreated, task_id)
        if not found:
            raise LedgerError(f"no TaskCreated event for task {task_id} at {self.address}")
        return found[0]

    def spec_cid(self, task_id: int) -> str:
        """Text CID of the task spec, from the task's creation event."""
        return cid_from_bytes(self.task_created(task_id).spec_cid)

    def model_cid(self, task_id: int, model_digest: bytes) -> str:
        """Text CID of a global model of this task (initial or finalized) with this digest."""
        created = self.task_created(task_id)
        if created.initial_model_cid[4:] == model_digest:
            return cid_from_bytes(created.initial_model_cid)
        for ev in self.events(RoundFinalized, task_id):
            if ev.aggregate_digest == model_digest:
                return cid_from_bytes(ev.aggregate_cid)
        raise LedgerError(
            f"no model with digest 0x{model_digest.hex()} was agreed in task {task_id}"
        )

    # -- rounds: writes ----------------------------------------------------------------------
    @abstractmethod
    def submit_update(
        self,
        task_id: int,
        round_no: int,
        update_cid: bytes,
        num_samples: int,
        epsilon_milli: int = 0,
    ) -> TxResult:
        """Submit this member's update; ``epsilon_milli``: the differential-privacy epsilon it
        has spent in the task once this update is out, in thousandths rounded up (0: no DP),
        never below its previous figure (EpsilonDecreased)."""

    @abstractmethod
    def close_updates(self, task_id: int, round_no: int) -> TxResult: ...

    @abstractmethod
    def attest_aggregate(
        self, task_id: int, round_no: int, aggregate_cid: bytes, scores_digest: bytes
    ) -> TxResult: ...

    @abstractmethod
    def fail_round(self, task_id: int, round_no: int) -> TxResult: ...

    @abstractmethod
    def report_dissent(self, task_id: int, round_no: int, member: str) -> TxResult:
        """Record that ``member``'s attestation of the last finalized round disagreed with it."""

    # -- rounds: reads -----------------------------------------------------------------------
    @abstractmethod
    def stored_round_info(self, task_id: int, round_no: int) -> RoundInfo:
        """The round as the contract's ``roundInfo`` view reports it (storage only)."""

    def round_info(self, task_id: int, round_no: int) -> RoundInfo:
        """The round as storage has it, completed from the round's events once it has ended."""
        info = self.stored_round_info(task_id, round_no)
        if info.status in (RoundStatus.FINALIZED, RoundStatus.FAILED):
            return self._from_history(info)
        return info

    def _from_history(self, info: RoundInfo) -> RoundInfo:
        kinds = (RoundOpened, UpdateSubmitted, UpdatesClosed, RoundFinalized)
        found = self.logs(kinds, info.task_id, info.round)
        opened = next((e for e in found if isinstance(e, RoundOpened)), None)
        closed = next((e for e in found if isinstance(e, UpdatesClosed)), None)
        final = next((e for e in found if isinstance(e, RoundFinalized)), None)
        submitted = sum(isinstance(e, UpdateSubmitted) for e in found)
        fields: dict[str, Any] = {
            "submissions": closed.submissions if closed is not None else submitted,
        }
        if opened is not None:
            fields.update(
                model_digest=opened.model_digest,
                submit_deadline=opened.submit_deadline,
                attest_deadline=opened.attest_deadline,
                eligible=opened.eligible,
            )
        if final is not None:
            fields.update(
                aggregate_digest=final.aggregate_digest,
                scores_digest=final.scores_digest,
                finalized_block=final.block_number,
            )
        return replace(info, **fields)

    @abstractmethod
    def submission_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, int]:
        """(digest, numSamples) of ``member``'s update in ``round_no`` while storage holds it
        (the open round and until the member submits again); zeros otherwise."""

    @abstractmethod
    def privacy_spent_of(self, task_id: int, member: str) -> tuple[int, int]:
        """(updates ``member`` submitted in the task, epsilon in thousandths committed with the
        latest): what a restarted peer has already spent, and what an auditor checks."""

    @abstractmethod
    def attestation_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, bytes]:
        """(aggregateDigest, scoresDigest) ``member`` attested in ``round_no`` while storage
        holds it; zeros otherwise."""

    @abstractmethod
    def dissent_reported(self, task_id: int, round_no: int, member: str) -> bool:
        """Whether ``member``'s dissent in ``round_no`` is on record (skip a duplicate report)."""

    def submissions(self, task_id: int, round_no: int) -> list[Submission]:
        """Every update submitted in the round, in chain order (block, log index)."""
        return [
            Submission(member=e.member, digest=e.digest, cid=e.cid, num_samples=e.num_samples)
            for e in self.events(UpdateSubmitted, task_id, round_no)
        ]

    def attestations(self, task_id: int, round_no: int) -> list[AggregateAttested]:
        """Every attestation of the round (including late ones), in chain order."""
        return self.events(AggregateAttested, task_id, round_no)

    def finalized_event(self, task_id: int, round_no: int) -> RoundFinalized:
        found = self.events(RoundFinalized, task_id, round_no)
        if not found:
            raise LedgerError(f"round {round_no} of task {task_id} has not finalized")
        return found[0]

    # -- contributions -----------------------------------------------------------------------
    @abstractmethod
    def claim_contribution(
        self, task_id: int, round_no: int, score: int, proof: Sequence[bytes]
    ) -> TxResult: ...

    @abstractmethod
    def contribution_of(self, account: str) -> int: ...

    @abstractmethod
    def credit_of(self, account: str) -> int: ...

    @abstractmethod
    def has_claimed(self, task_id: int, round_no: int, member: str) -> bool: ...
