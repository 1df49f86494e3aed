"""What the peer needs from the federation's ledger, independent of how it is reached.

:class:`peer.ledger.client.FederationClient` implements it over JSON-RPC for
any EVM chain (Anvil and Ganache pass the same conformance suite).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from peer.ledger.events import AggregateAttested, RoundFinalized
from peer.ledger.types import RoundInfo, Submission, TaskInfo, TxResult


class FederationLedger(ABC):
    """Reads and writes of one federation contract on behalf of one member."""

    address: str
    chain_id: int

    # -- membership --------------------------------------------------------------------
    @abstractmethod
    def is_member(self, account: str) -> bool: ...

    @abstractmethod
    def peer_id_of(self, account: str) -> str: ...

    @abstractmethod
    def members(self) -> list[str]: ...

    # -- tasks and rounds ----------------------------------------------------------------
    @abstractmethod
    def task(self, task_id: int) -> TaskInfo: ...

    @abstractmethod
    def round_info(self, task_id: int, round_no: int) -> RoundInfo: ...

    @abstractmethod
    def spec_cid(self, task_id: int) -> str: ...

    @abstractmethod
    def model_cid(self, task_id: int, model_digest: bytes) -> str: ...

    @abstractmethod
    def submission_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, int]: ...

    @abstractmethod
    def submissions(self, task_id: int, round_no: int) -> list[Submission]: ...

    @abstractmethod
    def attestations(self, task_id: int, round_no: int) -> list[AggregateAttested]: ...

    @abstractmethod
    def finalized_event(self, task_id: int, round_no: int) -> RoundFinalized: ...

    @abstractmethod
    def submit_update(
        self, task_id: int, round_no: int, update_cid: bytes, num_samples: int
    ) -> TxResult: ...

    @abstractmethod
    def close_updates(self, task_id: int, round_no: int) -> TxResult: ...

    @abstractmethod
    def attest_aggregate(
        self, task_id: int, round_no: int, aggregate_cid: bytes, scores_digest: bytes
    ) -> TxResult: ...

    @abstractmethod
    def fail_round(self, task_id: int, round_no: int) -> TxResult: ...

    @abstractmethod
    def report_dissent(self, task_id: int, round_no: int, member: str) -> TxResult: ...

    @abstractmethod
    def dissent_reported(self, task_id: int, round_no: int, member: str) -> bool: ...

    # -- contributions ---------------------------------------------------------------------
    @abstractmethod
    def claim_contribution(
        self, task_id: int, round_no: int, score: int, proof: Sequence[bytes]
    ) -> TxResult: ...

    @abstractmethod
    def has_claimed(self, task_id: int, round_no: int, member: str) -> bool: ...

    @abstractmethod
    def credit_of(self, account: str) -> int: ...
