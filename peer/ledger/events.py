"""The contract's events as frozen records, decoded from raw logs.

Events are the federation's history: storage keeps only what the next call
needs, and every step (each update's full CID, each attestation, each
finalized aggregate) is in a log.  Each record carries where it was found
(block, log index, transaction) so callers can order and cite it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from eth_abi.abi import decode as abi_decode

from peer.ledger.abi import ContractAbi, EventAbi, normalize


@dataclass(frozen=True, kw_only=True)
class ContractEvent:
    """Base of every event record: where the log was found."""

    block_number: int
    log_index: int
    tx_hash: str


@dataclass(frozen=True)
class MemberAdmitted(ContractEvent):
    account: str
    peer_id: str
    metadata_digest: bytes
    proposal_id: int
    """0 for founders."""


@dataclass(frozen=True)
class MemberRemoved(ContractEvent):
    account: str
    proposal_id: int


@dataclass(frozen=True)
class EncryptionKeySet(ContractEvent):
    account: str
    key: bytes
    proposal_id: int
    """0 for founders and rotations."""


@dataclass(frozen=True)
class ProposalCreated(ContractEvent):
    proposal_id: int
    proposer: str
    kind: int
    account: str
    peer_id: str
    metadata_digest: bytes
    expires_at: int


@dataclass(frozen=True)
class ProposalApproved(ContractEvent):
    proposal_id: int
    member: str
    approvals: int


@dataclass(frozen=True)
class TaskCreated(ContractEvent):
    task_id: int
    creator: str
    spec_digest: bytes
    spec_cid: bytes
    initial_model_cid: bytes
    quorum: int
    round_duration: int
    attest_duration: int
    num_rounds: int
    max_samples: int


@dataclass(frozen=True)
class RoundOpened(ContractEvent):
    task_id: int
    round: int
    model_digest: bytes
    submit_deadline: int
    attest_deadline: int
    eligible: int


@dataclass(frozen=True)
class UpdateSubmitted(ContractEvent):
    task_id: int
    round: int
    member: str
    digest: bytes
    cid: bytes
    num_samples: int
    index: int


@dataclass(frozen=True)
class UpdatesClosed(ContractEvent):
    task_id: int
    round: int
    submissions: int


@dataclass(frozen=True)
class AggregateAttested(ContractEvent):
    task_id: int
    round: int
    member: str
    aggregate_digest: bytes
    scores_digest: bytes


@dataclass(frozen=True)
class RoundFinalized(ContractEvent):
    task_id: int
    round: int
    aggregate_digest: bytes
    aggregate_cid: bytes
    scores_digest: bytes
    attestations: int


@dataclass(frozen=True)
class RoundFailed(ContractEvent):
    task_id: int
    round: int
    status_before: int
    submissions: int


@dataclass(frozen=True)
class TaskCompleted(ContractEvent):
    task_id: int
    last_round: int
    finalized_rounds: int


@dataclass(frozen=True)
class DissentRecorded(ContractEvent):
    task_id: int
    round: int
    member: str
    aggregate_digest: bytes
    scores_digest: bytes


@dataclass(frozen=True)
class ContributionClaimed(ContractEvent):
    task_id: int
    round: int
    member: str
    score: int


EVENT_TYPES: dict[str, type[ContractEvent]] = {
    cls.__name__: cls
    for cls in (
        MemberAdmitted,
        MemberRemoved,
        EncryptionKeySet,
        ProposalCreated,
        ProposalApproved,
        TaskCreated,
        RoundOpened,
        UpdateSubmitted,
        UpdatesClosed,
        AggregateAttested,
        RoundFinalized,
        RoundFailed,
        TaskCompleted,
        DissentRecorded,
        ContributionClaimed,
    )
}

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake_case(name: str) -> str:
    return _CAMEL.sub("_", name).lower()


def _as_bytes(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    text = str(value)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)


def _as_int(value: Any) -> int:
    return value if isinstance(value, int) else int(str(value), 16)


def _as_hex(value: Any) -> str:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    text = str(value)
    return text if text.startswith("0x") else "0x" + text


class EventDecoder:
    """Turns raw logs of one contract into event records; unknown logs are skipped."""

    def __init__(self, abi: ContractAbi) -> None:
        self._by_topic: dict[bytes, tuple[EventAbi, type[ContractEvent]]] = {}
        for topic0, ev in abi.events.items():
            cls = EVENT_TYPES.get(ev.name)
            if cls is None:
                raise ValueError(f"no record type for the contract event {ev.name}")
            expected = [f.name for f in fields(cls) if f.name not in _META]
            got = [snake_case(n) for n in ev.names]
            if expected != got:
                raise ValueError(f"event {ev.name} has fields {got}, the record expects {expected}")
            self._by_topic[topic0] = (ev, cls)

    def topic(self, cls: type[ContractEvent]) -> bytes:
        for topic0, (_, known) in self._by_topic.items():
            if known is cls:
                return topic0
        raise KeyError(f"the contract ABI has no event {cls.__name__}")

    def decode(self, log: Mapping[str, Any]) -> ContractEvent | None:
        topics = [_as_bytes(t) for t in log.get("topics", [])]
        if not topics or topics[0] not in self._by_topic:
            return None
        ev, cls = self._by_topic[topics[0]]
        data_types = [t for t, idx in zip(ev.types, ev.indexed, strict=True) if not idx]
        data_values = iter(abi_decode(data_types, _as_bytes(log.get("data", b""))))
        topic_values = iter(topics[1:])
        values: dict[str, Any] = {}
        for name, kind, indexed in zip(ev.names, ev.types, ev.indexed, strict=True):
            raw = abi_decode([kind], next(topic_values))[0] if indexed else next(data_values)
            values[snake_case(name)] = normalize(raw, kind)
        return cls(
            **values,
            block_number=_as_int(log["blockNumber"]),
            log_index=_as_int(log["logIndex"]),
            tx_hash=_as_hex(log["transactionHash"]),
        )

    def decode_all(self, logs: Iterable[Mapping[str, Any]]) -> list[ContractEvent]:
        out = []
        for log in logs:
            ev = self.decode(log)
            if ev is not None:
                out.append(ev)
        return out


_META = {f.name for f in fields(ContractEvent)}
