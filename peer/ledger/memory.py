"""The Federation contract in memory: a twin of the ledger for unit tests and the simulator.

:class:`MemoryChain` holds the whole state of any number of federations in Python and
re-implements ``contracts/Federation.sol`` rule for rule: membership and governance (approval
threshold in basis points of the members at proposal time, 7-day proposals), tasks (quorum a
strict majority; each round needs max(quorum, eligible / 2 + 1) capped at eligible), the round
lifecycle (deadlines from block time, submissions, closing, attestations counted per
(aggregate, scores) pair, finalization, failure, late attestations and dissent) and Merkle
claims of contribution and credit.  Every refusal raises the same
:mod:`peer.ledger.errors` class, with the same ``args_by_name`` and revert ``data``, that
:class:`~peer.ledger.client.FederationClient` raises for that custom error; the suite in
``tests/peer/ledger`` runs unchanged against this twin, Anvil and Ganache.

What differs from a chain, by design:

- **Blocks.**  Each successful write is one block holding one transaction, stamped
  ``max(int(now()), previous timestamp)`` (time never goes backwards); ``now`` is the
  constructor's clock (the simulator passes a virtual one).  A refused write mines nothing and
  uses no nonce.  :meth:`MemoryChain.mine` adds an empty block (what ``evm_mine`` does).
- **Transactions.**  No signing, fees or gas: ``TxResult.gas_used`` is 0, ``tx_hash`` is a
  deterministic keccak of (chain id, block, sender, nonce), and ``TxResult.receipt`` is a
  minimal receipt-shaped dict (hash, block, status, from, to, gasUsed; no raw logs -- the
  decoded events are in ``TxResult.events``).
- **Arguments** are checked against the contract's ABI types as the client's encoder checks
  them (an out-of-range integer raises eth_abi's ``EncodingError`` before anything happens).
- **Threads.**  One lock per chain serializes every read and write, so several threads (the
  simulator's peers) may share a chain and its handles.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from fedchain.errors import LedgerError
from peer.ledger import errors as E
from peer.ledger.abc import ZERO32, FederationLedger, HasAddress
from peer.ledger.errors import call_context
from peer.ledger.events import (
    AggregateAttested,
    ContractEvent,
    ContributionClaimed,
    DissentRecorded,
    EncryptionKeySet,
    MemberAdmitted,
    MemberRemoved,
    ProposalApproved,
    ProposalCreated,
    RoundFailed,
    RoundFinalized,
    RoundOpened,
    TaskCompleted,
    TaskCreated,
    UpdatesClosed,
    UpdateSubmitted,
)
from peer.ledger.types import (
    ProposalInfo,
    ProposalKind,
    RoundInfo,
    RoundStatus,
    TaskInfo,
    TaskStatus,
    TxResult,
)

R = TypeVar("R")

DEFAULT_CHAIN_ID = 7357
"""Chain id of a :class:`MemoryChain` unless given (no public chain uses it)."""
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"
PROPOSAL_TTL = 7 * 24 * 3600
MAX_MEMBERS = 2**16 - 1
MAX_PEER_ID_BYTES = 128
BPS = 10_000
UINT32_MAX = 2**32 - 1
UINT128_MAX = 2**128 - 1
CID_LENGTH = 36
CID_PREFIXES = (bytes.fromhex("01551220"), bytes.fromhex("01701220"))
"""CIDv1 + raw or dag-pb codec + sha2-256 + 32-byte digest (``CidBytes.digestOf``)."""

ERROR_SIGNATURES: dict[str, tuple[tuple[str, str], ...]] = {
    "NotMember": (("account", "address"),),
    "NotEligible": (("account", "address"), ("round", "uint32")),
    "UnknownTask": (("taskId", "uint256"),),
    "TaskFinished": (("taskId", "uint256"),),
    "WrongRound": (("expected", "uint32"), ("given", "uint32")),
    "RoundNotCollecting": (),
    "SubmissionDeadlinePassed": (("deadline", "uint64"),),
    "AlreadySubmitted": (),
    "ZeroSamples": (),
    "InvalidCid": (),
    "ZeroScoresDigest": (),
    "UpdatesNotClosed": (),
    "DeadlineNotPassed": (),
    "QuorumNotReached": (("have", "uint32"), ("need", "uint32")),
    "QuorumAlreadyReached": (("have", "uint32"), ("need", "uint32")),
    "AlreadyAttested": (),
    "AttestDeadlinePassed": (),
    "RoundAlreadyFinalized": (),
    "RoundNotFinalized": (),
    "NotAttested": (("member", "address"),),
    "NoDissent": (("member", "address"),),
    "DissentAlreadyReported": (("member", "address"),),
    "DissentWindowClosed": (("round", "uint32"),),
    "InvalidProof": (),
    "AlreadyClaimed": (),
    "AlreadyApproved": (),
    "UnknownProposal": (),
    "ProposalClosed": (),
    "AlreadyMember": (),
    "PeerIdTaken": (),
    "InvalidConfig": (("reason", "string"),),
    "SamplesAboveCap": (("given", "uint64"), ("cap", "uint64")),
    "QuorumNotMajority": (("quorum", "uint32"), ("members", "uint32")),
    "EpsilonDecreased": (("given", "uint32"), ("recorded", "uint32")),
    "ZeroEncryptionKey": (),
    "EncryptionKeyTaken": (("key", "bytes32"),),
}
"""Each custom error of Federation.sol: its parameters (name, ABI type), in order.  The suite
checks this table against the compiled ABI, so the twin cannot drift from the contract."""

WRITE_TYPES: dict[str, tuple[str, ...]] = {
    "propose": ("uint8", "address", "string", "bytes32", "bytes32"),
    "setEncryptionKey": ("bytes32",),
    "approve": ("uint256",),
    "createTask": ("bytes", "bytes", "uint32", "uint64", "uint64", "uint32", "uint64"),
    "submitUpdate": ("uint256", "uint32", "bytes", "uint64", "uint32"),
    "closeUpdates": ("uint256", "uint32"),
    "attestAggregate": ("uint256", "uint32", "bytes", "bytes32"),
    "failRound": ("uint256", "uint32"),
    "reportDissent": ("uint256", "uint32", "address"),
    "claimContribution": ("uint256", "uint32", "uint256", "bytes32[]"),
}
"""ABI input types of each write, checked the way the client's encoder checks them."""
CONSTRUCTOR_TYPES = ("address[]", "string[]", "bytes32[]", "bytes32", "uint16")

INDEXED: dict[type[ContractEvent], tuple[str, ...]] = {
    MemberAdmitted: ("account", "proposal_id"),
    MemberRemoved: ("account", "proposal_id"),
    EncryptionKeySet: ("account", "proposal_id"),
    ProposalCreated: ("proposal_id", "proposer", "account"),
    ProposalApproved: ("proposal_id", "member"),
    TaskCreated: ("task_id", "creator"),
    RoundOpened: ("task_id", "round"),
    UpdateSubmitted: ("task_id", "round", "member"),
    UpdatesClosed: ("task_id", "round"),
    AggregateAttested: ("task_id", "round", "member"),
    RoundFinalized: ("task_id", "round"),
    RoundFailed: ("task_id", "round"),
    TaskCompleted: ("task_id",),
    DissentRecorded: ("task_id", "round", "member"),
    ContributionClaimed: ("task_id", "round", "member"),
}
"""The indexed parameters of each event, in order: what a ``logs`` topic filter matches."""


def revert(name: str, context: str, *values: Any) -> E.ContractRevert:
    """The exception a chain's revert with custom error ``name(values)`` decodes to."""
    params = ERROR_SIGNATURES[name]
    types = [t for _, t in params]
    selector = keccak(text=f"{name}({','.join(types)})")[:4]
    data = selector + abi_encode(types, list(values))
    args = {
        n: (to_checksum_address(v) if t == "address" else v)
        for (n, t), v in zip(params, values, strict=True)
    }
    return E.CUSTOM_ERRORS[name](context, error_name=name, args_by_name=args, data=data)


def _panic(context: str, code: int) -> E.Panic:
    data = bytes.fromhex("4e487b71") + abi_encode(["uint256"], [code])
    return E.Panic(context, error_name="Panic", args_by_name={"code": hex(code)}, data=data)


def _digest_of(cid: bytes) -> bytes | None:
    """``CidBytes.digestOf``: the sha2-256 digest in a 36-byte raw/dag-pb CIDv1, else None."""
    if len(cid) != CID_LENGTH or cid[:4] not in CID_PREFIXES:
        return None
    return cid[4:]


def _score_leaf(task_id: int, round_no: int, member: str, score: int) -> bytes:
    """``ScoreProof.leaf``: keccak256(keccak256(abi.encode(taskId, round, member, score)))."""
    inner = abi_encode(
        ["uint256", "uint32", "address", "uint256"], [task_id, round_no, member, score]
    )
    return bytes(keccak(keccak(inner)))


def _verify(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """``ScoreProof.verify``: sorted-pair keccak256 from the leaf up to the root."""
    node = leaf
    for sibling in proof:
        node = keccak(node + sibling) if node <= sibling else keccak(sibling + node)
    return node == root


def _b32(value: bytes) -> bytes:
    """A ``bytes32`` argument as the ABI encoder sends it (shorter values right-padded)."""
    return bytes(value).ljust(32, b"\0")


def _addr(value: str | HasAddress) -> str:
    return str(to_checksum_address(value if isinstance(value, str) else value.address))


@dataclass(frozen=True)
class Address:
    """An account known by its address only (the twin signs nothing)."""

    address: str


# -- contract storage -----------------------------------------------------------------------


@dataclass
class _Member:
    index: int
    admitted_seq: int


@dataclass
class _Proposal:
    kind: ProposalKind
    account: str
    approvals: int
    member_count_at_proposal: int
    expires_at: int
    executed: bool
    proposer: str
    metadata_digest: bytes
    peer_id: str
    encryption_key: bytes = ZERO32


@dataclass(frozen=True)
class _TaskConfig:
    quorum: int
    round_duration: int
    attest_duration: int
    num_rounds: int
    max_samples: int


@dataclass
class _RoundState:
    """``RoundState``: the open (or last) round of a task."""

    round: int = 0
    status: RoundStatus = RoundStatus.NONE
    seq_at_open: int = 0
    submit_deadline: int = 0
    attest_window: int = 0
    eligible: int = 0
    need: int = 0
    submissions: int = 0
    lead_votes: int = 0
    last_finalized_round: int = 0
    finalized_rounds: int = 0


@dataclass
class _Participation:
    """``Participation``: a member's latest submission and attestation in a task."""

    update_digest: bytes = ZERO32
    num_samples: int = 0
    submit_round: int = 0
    attest_round: int = 0
    finalizer: bool = False
    updates_submitted: int = 0
    epsilon_milli: int = 0
    vote_aggregate: bytes = ZERO32
    vote_scores: bytes = ZERO32


@dataclass
class _Federation:
    """The storage of one deployed Federation."""

    address: str
    approval_bps: int
    audit_key: bytes = ZERO32
    member_count: int = 0
    membership_seq: int = 0
    task_count: int = 0
    proposal_count: int = 0
    member_list: list[str] = field(default_factory=list)
    members: dict[str, _Member] = field(default_factory=dict)
    peer_ids: dict[str, str] = field(default_factory=dict)
    by_peer_id: dict[str, str] = field(default_factory=dict)
    encryption_keys: dict[str, bytes] = field(default_factory=dict)
    by_encryption_key: dict[bytes, str] = field(default_factory=dict)
    proposals: dict[int, _Proposal] = field(default_factory=dict)
    approved_by: set[tuple[int, str]] = field(default_factory=set)
    config: dict[int, _TaskConfig] = field(default_factory=dict)
    state: dict[int, _RoundState] = field(default_factory=dict)
    spec_digest: dict[int, bytes] = field(default_factory=dict)
    model: dict[int, bytes] = field(default_factory=dict)
    lead_pair: dict[int, bytes] = field(default_factory=dict)
    other_votes: dict[tuple[int, int, bytes], int] = field(default_factory=dict)
    scores_root: dict[tuple[int, int], bytes] = field(default_factory=dict)
    part: dict[tuple[int, str], _Participation] = field(default_factory=dict)
    dissent: set[tuple[int, int, str]] = field(default_factory=set)
    claimed: set[tuple[int, str, int]] = field(default_factory=set)
    ledger: dict[str, list[int]] = field(default_factory=dict)
    """account -> [contribution, credit]."""
    logs: list[ContractEvent] = field(default_factory=list)
    index: dict[tuple[Any, ...], list[ContractEvent]] = field(default_factory=dict)
    """(kind,), (kind, topic1) and (kind, topic1, topic2) -> events, in chain order."""


class _Tx:
    """One write being executed: its block, sender, and the events it emits so far."""

    def __init__(self, fed: _Federation, sender: str, timestamp: int, context: str) -> None:
        self.fed = fed
        self.sender = sender
        self.timestamp = timestamp
        self.context = context
        self.emitted: list[tuple[type[ContractEvent], dict[str, Any]]] = []

    def fail(self, name: str, *values: Any) -> E.ContractRevert:
        return revert(name, self.context, *values)

    def emit(self, event: type[ContractEvent], /, **values: Any) -> None:
        self.emitted.append((event, values))


# -- the chain --------------------------------------------------------------------------------


class MemoryChain:
    """An in-process chain holding any number of Federation contracts.

    ``now`` gives block time in seconds (default: the wall clock); each successful write is a
    block stamped ``int(now())``, never earlier than the block before.
    """

    def __init__(
        self, now: Callable[[], float] = time.time, *, chain_id: int = DEFAULT_CHAIN_ID
    ) -> None:
        self.now = now
        self.chain_id = chain_id
        self._lock = threading.RLock()
        self._timestamps: list[int] = [int(now())]
        """Block number -> timestamp (block 0 is genesis)."""
        self._nonces: dict[str, int] = {}
        self._feds: dict[str, _Federation] = {}
        self._latest: str | None = None

    # -- blocks -------------------------------------------------------------------------------

    def block_number(self) -> int:
        """Number of the latest block."""
        with self._lock:
            return len(self._timestamps) - 1

    def block_timestamp(self, block_number: int | None = None) -> int:
        """Timestamp of block ``block_number`` (default: the latest)."""
        with self._lock:
            if block_number is None:
                return self._timestamps[-1]
            if not 0 <= block_number < len(self._timestamps):
                raise LedgerError(f"block {block_number} has not been mined")
            return self._timestamps[block_number]

    def _next_timestamp(self) -> int:
        return max(int(self.now()), self._timestamps[-1])

    def mine(self) -> int:
        """Mine an empty block at the clock's time; return its timestamp."""
        with self._lock:
            self._timestamps.append(self._next_timestamp())
            return self._timestamps[-1]

    def _commit(self, tx: _Tx, to: str | None) -> TxResult:
        """Mine ``tx`` (checked and applied) in a new block; log its events."""
        nonce = self._nonces.get(tx.sender, 0)
        self._nonces[tx.sender] = nonce + 1
        self._timestamps.append(tx.timestamp)
        block = len(self._timestamps) - 1
        seed = b"".join(
            (
                self.chain_id.to_bytes(32, "big"),
                block.to_bytes(32, "big"),
                bytes.fromhex(tx.sender[2:]),
                nonce.to_bytes(32, "big"),
            )
        )
        tx_hash = "0x" + keccak(seed).hex()
        events = tuple(
            kind(**values, block_number=block, log_index=i, tx_hash=tx_hash)
            for i, (kind, values) in enumerate(tx.emitted)
        )
        for ev in events:
            self._log(tx.fed, ev)
        receipt: dict[str, Any] = {
            "transactionHash": tx_hash,
            "blockNumber": hex(block),
            "from": tx.sender,
            "to": to,
            "contractAddress": tx.fed.address if to is None else None,
            "gasUsed": "0x0",
            "status": "0x1",
            "logs": [],
        }
        return TxResult(
            tx_hash=tx_hash, block_number=block, gas_used=0, receipt=receipt, events=events
        )

    @staticmethod
    def _log(fed: _Federation, ev: ContractEvent) -> None:
        fed.logs.append(ev)
        kind = type(ev)
        topics = tuple(getattr(ev, name) for name in INDEXED[kind][:2])
        for n in range(len(topics) + 1):
            fed.index.setdefault((kind, *topics[:n]), []).append(ev)

    # -- contracts ----------------------------------------------------------------------------

    def deploy(
        self,
        deployer: str | HasAddress,
        members: Sequence[str],
        peer_ids: Sequence[str],
        approval_bps: int,
        *,
        encryption_keys: Sequence[bytes] = (),
        audit_key: bytes = ZERO32,
    ) -> MemoryFederation:
        """Deploy a Federation with its founding members; return a handle acting as ``deployer``.

        Like :func:`peer.ledger.client.deploy`: the deployer gets no power over the contract,
        and the deployment's events are in the returned handle's ``last_result``.
        """
        sender = _addr(deployer)
        founders = [to_checksum_address(a) for a in members]
        keys = [_b32(k) for k in encryption_keys]
        audit = _b32(audit_key)
        abi_encode(CONSTRUCTOR_TYPES, [founders, list(peer_ids), keys, audit, approval_bps])
        context = f"deploy Federation({len(founders)} founders, approvalBps={approval_bps})"
        with self._lock:
            nonce = self._nonces.get(sender, 0)
            seed = b"fedchain memory federation" + bytes.fromhex(sender[2:])
            address = to_checksum_address(keccak(seed + nonce.to_bytes(32, "big"))[12:])
            fed = _Federation(address=address, approval_bps=approval_bps, audit_key=audit)
            tx = _Tx(fed, sender, self._next_timestamp(), context)
            if approval_bps == 0 or approval_bps > BPS:
                raise tx.fail("InvalidConfig", "approvalBps must be in 1..10000")
            if not founders:
                raise tx.fail("InvalidConfig", "at least one founder is needed")
            if len(founders) != len(peer_ids):
                raise tx.fail("InvalidConfig", "founders and peerIds differ in length")
            if keys and len(keys) != len(founders):
                raise tx.fail("InvalidConfig", "founders and encryptionKeys differ in length")
            if len(founders) > MAX_MEMBERS:
                raise tx.fail("InvalidConfig", "too many founders")
            for i, (account, peer_id) in enumerate(zip(founders, peer_ids, strict=True)):
                key = keys[i] if keys else ZERO32
                _check_admissible(tx, account, peer_id)
                _check_encryption_key(tx, key, audit != ZERO32)
                _admit(tx, account, peer_id, ZERO32, 0)
                _set_encryption_key(tx, account, key, 0)
            self._feds[address] = fed
            self._latest = address
            result = self._commit(tx, None)
        handle = MemoryFederation(self, address, deployer)
        handle.last_result = result
        return handle

    def client(self, account: str | HasAddress, address: str | None = None) -> MemoryFederation:
        """A handle on the federation at ``address`` (default: the latest deployed) acting as
        ``account`` (an eth_account ``LocalAccount``, or just an address)."""
        with self._lock:
            where = address if address is not None else self._latest
            if where is None:
                raise E.NotAFederation("no Federation has been deployed on this memory chain")
        return MemoryFederation(self, where, account)

    def _fed(self, address: str) -> _Federation:
        try:
            return self._feds[address]
        except KeyError:
            raise E.NotAFederation(
                f"no Federation contract at {address} on memory chain {self.chain_id}"
            ) from None

    def __repr__(self) -> str:
        return (
            f"MemoryChain(chain {self.chain_id}, block {self.block_number()}, "
            f"{len(self._feds)} federations)"
        )


# -- the contract's rules (each function mirrors the Solidity function of the same name) -------


def _require_member(tx: _Tx, account: str) -> None:
    if account not in tx.fed.members:
        raise tx.fail("NotMember", account)


def _load_state(fed: _Federation, task_id: int, context: str) -> _RoundState:
    s = fed.state.get(task_id)
    if s is None:
        raise revert("UnknownTask", context, task_id)
    return s


def _require_open_round(tx: _Tx, task_id: int, s: _RoundState, round_no: int) -> None:
    if s.status is RoundStatus.FINALIZED:
        raise tx.fail("TaskFinished", task_id)
    if round_no != s.round:
        raise tx.fail("WrongRound", s.round, round_no)


def _check_admissible(tx: _Tx, account: str, peer_id: str) -> None:
    fed = tx.fed
    if account == ZERO_ADDRESS:
        raise tx.fail("InvalidConfig", "member address is zero")
    if account in fed.members:
        raise tx.fail("AlreadyMember")
    if not 0 < len(peer_id.encode()) <= MAX_PEER_ID_BYTES:
        raise tx.fail("InvalidConfig", "peer ID must be 1..128 bytes")
    if peer_id in fed.by_peer_id:
        raise tx.fail("PeerIdTaken")
    if fed.member_count >= MAX_MEMBERS:
        raise tx.fail("InvalidConfig", "federation is full")


def _check_encryption_key(tx: _Tx, key: bytes, required: bool) -> None:
    if key == ZERO32:
        if required:
            raise tx.fail("ZeroEncryptionKey")
        return
    if key in tx.fed.by_encryption_key:
        raise tx.fail("EncryptionKeyTaken", key)


def _set_encryption_key(tx: _Tx, account: str, key: bytes, proposal_id: int) -> None:
    if key == ZERO32:
        return
    tx.fed.encryption_keys[account] = key
    tx.fed.by_encryption_key[key] = account
    tx.emit(EncryptionKeySet, account=account, key=key, proposal_id=proposal_id)


def _rotate_encryption_key(tx: _Tx, key: bytes) -> None:
    _require_member(tx, tx.sender)
    _check_encryption_key(tx, key, True)
    tx.fed.by_encryption_key.pop(tx.fed.encryption_keys.get(tx.sender, ZERO32), None)
    _set_encryption_key(tx, tx.sender, key, 0)


def _check_removable(tx: _Tx, account: str) -> None:
    if account not in tx.fed.members:
        raise tx.fail("NotMember", account)
    if tx.fed.member_count <= 1:
        raise tx.fail("InvalidConfig", "cannot remove the last member")


def _admit(tx: _Tx, account: str, peer_id: str, metadata: bytes, proposal_id: int) -> None:
    fed = tx.fed
    fed.membership_seq += 1
    fed.member_count += 1
    fed.members[account] = _Member(index=len(fed.member_list), admitted_seq=fed.membership_seq)
    fed.member_list.append(account)
    fed.peer_ids[account] = peer_id
    fed.by_peer_id[peer_id] = account
    tx.emit(
        MemberAdmitted,
        account=account,
        peer_id=peer_id,
        metadata_digest=metadata,
        proposal_id=proposal_id,
    )


def _remove(tx: _Tx, account: str, proposal_id: int) -> None:
    fed = tx.fed
    index = fed.members[account].index
    last = fed.member_list[-1]
    if last != account:
        fed.member_list[index] = last
        fed.members[last].index = index
    fed.member_list.pop()
    del fed.members[account]
    fed.by_peer_id.pop(fed.peer_ids.pop(account, ""), None)
    fed.by_encryption_key.pop(fed.encryption_keys.pop(account, ZERO32), None)
    fed.member_count -= 1
    tx.emit(MemberRemoved, account=account, proposal_id=proposal_id)


def _approve(tx: _Tx, proposal_id: int, p: _Proposal) -> None:
    approvals = p.approvals + 1
    executes = approvals * BPS >= tx.fed.approval_bps * p.member_count_at_proposal
    if executes:  # the checks that would revert the whole call come first: nothing is applied
        if p.kind is ProposalKind.ADMIT:
            _check_admissible(tx, p.account, p.peer_id)
            _check_encryption_key(tx, p.encryption_key, tx.fed.audit_key != ZERO32)
        else:
            _check_removable(tx, p.account)
    tx.fed.approved_by.add((proposal_id, tx.sender))
    p.approvals = approvals
    tx.emit(ProposalApproved, proposal_id=proposal_id, member=tx.sender, approvals=approvals)
    if not executes:
        return
    p.executed = True
    if p.kind is ProposalKind.ADMIT:
        _admit(tx, p.account, p.peer_id, p.metadata_digest, proposal_id)
        _set_encryption_key(tx, p.account, p.encryption_key, proposal_id)
    else:
        _remove(tx, p.account, proposal_id)


def _propose(
    tx: _Tx, kind: int, account: str, peer_id: str, metadata: bytes, key: bytes = ZERO32
) -> int:
    fed = tx.fed
    _require_member(tx, tx.sender)
    if kind > ProposalKind.REMOVE:
        raise tx.fail("InvalidConfig", "proposal kind must be 0 (admit) or 1 (remove)")
    k = ProposalKind(kind)
    if k is ProposalKind.ADMIT:
        _check_admissible(tx, account, peer_id)
        _check_encryption_key(tx, key, fed.audit_key != ZERO32)
    else:
        _check_removable(tx, account)
    fed.proposal_count += 1
    proposal_id = fed.proposal_count
    p = _Proposal(
        kind=k,
        account=account,
        approvals=0,
        member_count_at_proposal=fed.member_count,
        expires_at=tx.timestamp + PROPOSAL_TTL,
        executed=False,
        proposer=tx.sender,
        metadata_digest=metadata,
        peer_id=peer_id if k is ProposalKind.ADMIT else "",
        encryption_key=key if k is ProposalKind.ADMIT else ZERO32,
    )
    fed.proposals[proposal_id] = p
    tx.emit(
        ProposalCreated,
        proposal_id=proposal_id,
        proposer=tx.sender,
        kind=int(k),
        account=account,
        peer_id=p.peer_id,
        metadata_digest=metadata,
        expires_at=p.expires_at,
    )
    _approve(tx, proposal_id, p)
    return proposal_id


def _approve_call(tx: _Tx, proposal_id: int) -> None:
    _require_member(tx, tx.sender)
    p = tx.fed.proposals.get(proposal_id)
    if p is None:
        raise tx.fail("UnknownProposal")
    if p.executed or tx.timestamp > p.expires_at:
        raise tx.fail("ProposalClosed")
    if (proposal_id, tx.sender) in tx.fed.approved_by:
        raise tx.fail("AlreadyApproved")
    _approve(tx, proposal_id, p)


def _digest_or_revert(tx: _Tx, cid: bytes) -> bytes:
    digest = _digest_of(cid)
    if digest is None:
        raise tx.fail("InvalidCid")
    return digest


def _task_config(
    tx: _Tx, quorum: int, round_d: int, attest_d: int, num_rounds: int, max_samples: int
) -> _TaskConfig:
    if quorum == 0:
        raise tx.fail("InvalidConfig", "quorum must be at least 1")
    count = tx.fed.member_count
    if 2 * quorum <= count:
        raise tx.fail("QuorumNotMajority", quorum, count)
    if round_d == 0 or round_d > UINT32_MAX:
        raise tx.fail("InvalidConfig", "roundDuration must be in 1..2^32-1 seconds")
    if attest_d == 0 or attest_d > UINT32_MAX:
        raise tx.fail("InvalidConfig", "attestDuration must be in 1..2^32-1 seconds")
    if num_rounds == 0 or num_rounds > 2**16 - 1:
        raise tx.fail("InvalidConfig", "numRounds must be in 1..65535")
    if max_samples == 0:
        raise tx.fail("InvalidConfig", "maxSamples must be at least 1")
    return _TaskConfig(quorum, round_d, attest_d, num_rounds, max_samples)


def _open_round(tx: _Tx, task_id: int, s: _RoundState, c: _TaskConfig, round_no: int) -> None:
    fed = tx.fed
    eligible = fed.member_count
    s.round = round_no
    s.status = RoundStatus.COLLECTING
    s.seq_at_open = fed.membership_seq
    s.submit_deadline = tx.timestamp + c.round_duration
    s.attest_window = c.attest_duration
    s.eligible = eligible
    need = max(c.quorum, eligible // 2 + 1)
    s.need = min(need, eligible)
    s.submissions = 0
    s.lead_votes = 0
    fed.state[task_id] = s
    tx.emit(
        RoundOpened,
        task_id=task_id,
        round=round_no,
        model_digest=fed.model[task_id],
        submit_deadline=s.submit_deadline,
        attest_deadline=s.submit_deadline + c.attest_duration,
        eligible=eligible,
    )


def _create_task(
    tx: _Tx,
    spec_cid: bytes,
    model_cid: bytes,
    quorum: int,
    round_d: int,
    attest_d: int,
    num_rounds: int,
    max_samples: int,
) -> int:
    fed = tx.fed
    _require_member(tx, tx.sender)
    spec_digest = _digest_or_revert(tx, spec_cid)
    model_digest = _digest_or_revert(tx, model_cid)
    c = _task_config(tx, quorum, round_d, attest_d, num_rounds, max_samples)
    fed.task_count += 1
    task_id = fed.task_count
    fed.config[task_id] = c
    fed.spec_digest[task_id] = spec_digest
    fed.model[task_id] = model_digest
    tx.emit(
        TaskCreated,
        task_id=task_id,
        creator=tx.sender,
        spec_digest=spec_digest,
        spec_cid=spec_cid,
        initial_model_cid=model_cid,
        quorum=c.quorum,
        round_duration=c.round_duration,
        attest_duration=c.attest_duration,
        num_rounds=c.num_rounds,
        max_samples=c.max_samples,
    )
    _open_round(tx, task_id, _RoundState(), c, 1)
    return task_id


def _part(fed: _Federation, task_id: int, account: str) -> _Participation:
    return fed.part.setdefault((task_id, account), _Participation())


def _submit_update(
    tx: _Tx, task_id: int, round_no: int, cid: bytes, samples: int, epsilon_milli: int
) -> None:
    fed = tx.fed
    s = _load_state(fed, task_id, tx.context)
    m = fed.members.get(tx.sender)
    if m is None:
        raise tx.fail("NotMember", tx.sender)
    _require_open_round(tx, task_id, s, round_no)
    if s.status is not RoundStatus.COLLECTING:
        raise tx.fail("RoundNotCollecting")
    if m.admitted_seq > s.seq_at_open:
        raise tx.fail("NotEligible", tx.sender, round_no)
    if tx.timestamp > s.submit_deadline:
        raise tx.fail("SubmissionDeadlinePassed", s.submit_deadline)
    p = fed.part.get((task_id, tx.sender), _Participation())
    if p.submit_round == round_no:
        raise tx.fail("AlreadySubmitted")
    if samples == 0:
        raise tx.fail("ZeroSamples")
    cap = fed.config[task_id].max_samples
    if samples > cap:
        raise tx.fail("SamplesAboveCap", samples, cap)
    if epsilon_milli < p.epsilon_milli:
        raise tx.fail("EpsilonDecreased", epsilon_milli, p.epsilon_milli)
    digest = _digest_or_revert(tx, cid)
    p = _part(fed, task_id, tx.sender)
    p.update_digest = digest
    p.num_samples = samples
    p.submit_round = round_no
    p.updates_submitted += 1
    p.epsilon_milli = epsilon_milli
    index = s.submissions
    s.submissions = index + 1
    tx.emit(
        UpdateSubmitted,
        task_id=task_id,
        round=round_no,
        member=tx.sender,
        digest=digest,
        cid=cid,
        num_samples=samples,
        index=index,
    )
    if s.submissions == s.eligible:
        s.status = RoundStatus.CLOSED
        tx.emit(UpdatesClosed, task_id=task_id, round=round_no, submissions=s.submissions)


def _close_updates(tx: _Tx, task_id: int, round_no: int) -> None:
    s = _load_state(tx.fed, task_id, tx.context)
    _require_member(tx, tx.sender)
    _require_open_round(tx, task_id, s, round_no)
    if s.status is not RoundStatus.COLLECTING:
        raise tx.fail("RoundNotCollecting")
    if tx.timestamp <= s.submit_deadline:
        raise tx.fail("DeadlineNotPassed")
    if s.submissions < s.need:
        raise tx.fail("QuorumNotReached", s.submissions, s.need)
    s.status = RoundStatus.CLOSED
    tx.emit(UpdatesClosed, task_id=task_id, round=round_no, submissions=s.submissions)


def _finalize(
    tx: _Tx, task_id: int, s: _RoundState, agg: bytes, agg_cid: bytes, scores: bytes, votes: int
) -> None:
    fed = tx.fed
    round_no = s.round
    fed.scores_root[(task_id, round_no)] = scores
    fed.model[task_id] = agg
    s.status = RoundStatus.FINALIZED
    s.last_finalized_round = round_no
    s.finalized_rounds += 1
    tx.emit(
        RoundFinalized,
        task_id=task_id,
        round=round_no,
        aggregate_digest=agg,
        aggregate_cid=agg_cid,
        scores_digest=scores,
        attestations=votes,
    )
    c = fed.config[task_id]
    if s.finalized_rounds >= c.num_rounds:
        tx.emit(
            TaskCompleted, task_id=task_id, last_round=round_no, finalized_rounds=s.finalized_rounds
        )
    else:
        _open_round(tx, task_id, s, c, round_no + 1)


def _attest_aggregate(tx: _Tx, task_id: int, round_no: int, agg_cid: bytes, scores: bytes) -> None:
    fed = tx.fed
    s = _load_state(fed, task_id, tx.context)
    m = fed.members.get(tx.sender)
    if m is None:
        raise tx.fail("NotMember", tx.sender)
    agg = _digest_or_revert(tx, agg_cid)
    if scores == ZERO32:
        raise tx.fail("ZeroScoresDigest")
    old = fed.part.get((task_id, tx.sender), _Participation())

    if round_no == s.round and s.status is not RoundStatus.FINALIZED:
        if s.status is not RoundStatus.CLOSED:
            raise tx.fail("UpdatesNotClosed")
        if m.admitted_seq > s.seq_at_open:
            raise tx.fail("NotEligible", tx.sender, round_no)
        if tx.timestamp > s.submit_deadline + s.attest_window:
            raise tx.fail("AttestDeadlinePassed")
        if old.attest_round == round_no:
            raise tx.fail("AlreadyAttested")
        tx.emit(
            AggregateAttested,
            task_id=task_id,
            round=round_no,
            member=tx.sender,
            aggregate_digest=agg,
            scores_digest=scores,
        )
        pair = keccak(agg + scores)  # keccak256(abi.encode(bytes32, bytes32))
        if s.lead_votes == 0:
            fed.lead_pair[task_id] = pair
            s.lead_votes = votes = 1
        elif fed.lead_pair.get(task_id) == pair:
            s.lead_votes += 1
            votes = s.lead_votes
        else:
            key = (task_id, round_no, pair)
            votes = fed.other_votes.get(key, 0) + 1
            fed.other_votes[key] = votes
        p = _part(fed, task_id, tx.sender)
        p.attest_round = round_no
        if votes >= s.need:
            p.finalizer = True
            _finalize(tx, task_id, s, agg, agg_cid, scores, votes)
            return
        p.finalizer = False
        p.vote_aggregate = agg
        p.vote_scores = scores
        return
    if round_no != 0 and round_no == s.last_finalized_round:
        if old.attest_round >= round_no:
            raise tx.fail("AlreadyAttested")
        p = _part(fed, task_id, tx.sender)
        p.attest_round = round_no
        p.finalizer = False
        p.vote_aggregate = agg
        p.vote_scores = scores
        tx.emit(
            AggregateAttested,
            task_id=task_id,
            round=round_no,
            member=tx.sender,
            aggregate_digest=agg,
            scores_digest=scores,
        )
        if agg != fed.model[task_id] or scores != fed.scores_root.get((task_id, round_no), ZERO32):
            fed.dissent.add((task_id, round_no, tx.sender))
            tx.emit(
                DissentRecorded,
                task_id=task_id,
                round=round_no,
                member=tx.sender,
                aggregate_digest=agg,
                scores_digest=scores,
            )
        return
    if round_no != 0 and round_no < s.round and (task_id, round_no) in fed.scores_root:
        raise tx.fail("RoundAlreadyFinalized")
    raise tx.fail("WrongRound", s.round, round_no)


def _fail_round(tx: _Tx, task_id: int, round_no: int) -> None:
    fed = tx.fed
    s = _load_state(fed, task_id, tx.context)
    _require_member(tx, tx.sender)
    if round_no != s.round:
        raise tx.fail("WrongRound", s.round, round_no)
    before = s.status
    if before is RoundStatus.FINALIZED:
        raise tx.fail("RoundAlreadyFinalized")
    if tx.timestamp <= s.submit_deadline:
        raise tx.fail("DeadlineNotPassed")
    past_attest = tx.timestamp > s.submit_deadline + s.attest_window
    if not past_attest:
        if before is not RoundStatus.COLLECTING:
            raise tx.fail("DeadlineNotPassed")
        if s.submissions >= s.need:
            raise tx.fail("QuorumAlreadyReached", s.submissions, s.need)
    tx.emit(
        RoundFailed,
        task_id=task_id,
        round=round_no,
        status_before=int(before),
        submissions=s.submissions,
    )
    _open_round(tx, task_id, s, fed.config[task_id], round_no + 1)


def _report_dissent(tx: _Tx, task_id: int, round_no: int, member: str) -> None:
    fed = tx.fed
    s = _load_state(fed, task_id, tx.context)
    if round_no == 0 or round_no != s.last_finalized_round:
        if round_no != 0 and round_no < s.round and (task_id, round_no) in fed.scores_root:
            raise tx.fail("DissentWindowClosed", round_no)
        raise tx.fail("RoundNotFinalized")
    p = fed.part.get((task_id, member), _Participation())
    if p.attest_round != round_no:
        if p.attest_round > round_no:
            raise tx.fail("DissentWindowClosed", round_no)
        raise tx.fail("NotAttested", member)
    if p.finalizer:
        raise tx.fail("NoDissent", member)
    if p.vote_aggregate == fed.model[task_id] and p.vote_scores == fed.scores_root.get(
        (task_id, round_no)
    ):
        raise tx.fail("NoDissent", member)
    if (task_id, round_no, member) in fed.dissent:
        raise tx.fail("DissentAlreadyReported", member)
    fed.dissent.add((task_id, round_no, member))
    tx.emit(
        DissentRecorded,
        task_id=task_id,
        round=round_no,
        member=member,
        aggregate_digest=p.vote_aggregate,
        scores_digest=p.vote_scores,
    )


def _claim_contribution(
    tx: _Tx, task_id: int, round_no: int, score: int, proof: Sequence[bytes]
) -> None:
    fed = tx.fed
    _load_state(fed, task_id, tx.context)
    _require_member(tx, tx.sender)
    root = fed.scores_root.get((task_id, round_no))
    if root is None:
        raise tx.fail("RoundNotFinalized")
    if (task_id, tx.sender, round_no) in fed.claimed:
        raise tx.fail("AlreadyClaimed")
    if not _verify(proof, root, _score_leaf(task_id, round_no, tx.sender, score)):
        raise tx.fail("InvalidProof")
    if score > UINT128_MAX:
        raise tx.fail("InvalidConfig", "score exceeds 2^128")
    totals = fed.ledger.setdefault(tx.sender, [0, 0])
    if totals[0] + score > UINT128_MAX or totals[1] + score > UINT128_MAX:
        raise _panic(tx.context, 0x11)  # checked arithmetic overflow
    fed.claimed.add((task_id, tx.sender, round_no))
    totals[0] += score
    totals[1] += score
    tx.emit(ContributionClaimed, task_id=task_id, round=round_no, member=tx.sender, score=score)


# -- the handle ------------------------------------------------------------------------------


class MemoryFederation(FederationLedger):
    """One account's handle on a Federation held by a :class:`MemoryChain`.

    Behaves like :class:`~peer.ledger.client.FederationClient` acting for the same account:
    same methods, same results, same exceptions.  Get one from :meth:`MemoryChain.deploy` or
    :meth:`MemoryChain.client`; :class:`~peer.ledger.errors.NotAFederation` if ``address``
    holds no federation.
    """

    def __init__(self, chain: MemoryChain, address: str, account: str | HasAddress) -> None:
        self.chain = chain
        self.address = to_checksum_address(address)
        self.account = (
            Address(to_checksum_address(account)) if isinstance(account, str) else account
        )
        self.chain_id = chain.chain_id
        self.last_result: TxResult | None = None
        with chain._lock:
            chain._fed(self.address)

    def client(self, account: str | HasAddress) -> MemoryFederation:
        """A handle on the same federation acting as ``account``."""
        return MemoryFederation(self.chain, self.address, account)

    # -- plumbing -------------------------------------------------------------------------------

    def _context(self, fn: str, args: Sequence[Any]) -> str:
        return call_context(fn, args, self.account_address)

    def _read(self, fn: str, args: Sequence[Any], view: Callable[[_Federation, str], R]) -> R:
        with self.chain._lock:
            return view(self.chain._fed(self.address), self._context(fn, args))

    def _write(self, fn: str, args: Sequence[Any], apply: Callable[[_Tx], R]) -> tuple[R, TxResult]:
        abi_encode(WRITE_TYPES[fn], list(args))  # the client's encoder refuses the same values
        chain = self.chain
        with chain._lock:
            fed = chain._fed(self.address)
            tx = _Tx(fed, self.account_address, chain._next_timestamp(), self._context(fn, args))
            value = apply(tx)
            result = chain._commit(tx, self.address)
        self.last_result = result
        return value, result

    def block_number(self) -> int:
        return self.chain.block_number()

    def logs(
        self,
        kinds: Iterable[type[ContractEvent]],
        *topics: int | str | None,
        from_block: int = 0,
    ) -> list[ContractEvent]:
        wanted = [
            (None if t is None else to_checksum_address(t) if isinstance(t, str) else t)
            for t in topics
        ]
        found: list[ContractEvent] = []
        with self.chain._lock:
            fed = self.chain._fed(self.address)
            for kind in kinds:
                names = INDEXED[kind]
                if len(wanted) > len(names):
                    continue
                prefix: list[Any] = []
                for t in wanted[:2]:
                    if t is None:
                        break
                    prefix.append(t)
                for ev in fed.index.get((kind, *prefix), []):
                    if ev.block_number >= from_block and all(
                        t is None or getattr(ev, name) == t
                        for name, t in zip(names, wanted, strict=False)
                    ):
                        found.append(ev)
        found.sort(key=lambda e: (e.block_number, e.log_index))
        return found

    # -- membership -----------------------------------------------------------------------------

    def is_member(self, account: str) -> bool:
        who = to_checksum_address(account)
        return self._read("isMember", [who], lambda f, _: who in f.members)

    def member_count(self) -> int:
        return self._read("memberCount", [], lambda f, _: f.member_count)

    def peer_id_of(self, account: str) -> str:
        who = to_checksum_address(account)
        return self._read("peerIdOf", [who], lambda f, _: f.peer_ids.get(who, ""))

    def member_by_peer_id(self, peer_id: str) -> str | None:
        return self._read("memberByPeerId", [peer_id], lambda f, _: f.by_peer_id.get(peer_id))

    def members(self) -> list[str]:
        return self._read("members", [], lambda f, _: list(f.member_list))

    def approval_bps(self) -> int:
        return self._read("approvalBps", [], lambda f, _: f.approval_bps)

    def encryption_key_of(self, account: str) -> bytes:
        who = to_checksum_address(account)
        return self._read("encryptionKeyOf", [who], lambda f, _: f.encryption_keys.get(who, ZERO32))

    def audit_key(self) -> bytes:
        return self._read("auditKey", [], lambda f, _: f.audit_key)

    def set_encryption_key(self, key: bytes) -> TxResult:
        k = bytes(key)
        return self._write("setEncryptionKey", [k], lambda tx: _rotate_encryption_key(tx, _b32(k)))[
            1
        ]

    # -- governance -------------------------------------------------------------------------------

    def propose(
        self,
        kind: ProposalKind,
        account: str,
        peer_id: str = "",
        metadata_digest: bytes = ZERO32,
        encryption_key: bytes = ZERO32,
    ) -> int:
        who, metadata = to_checksum_address(account), bytes(metadata_digest)
        key = bytes(encryption_key)
        pid, _ = self._write(
            "propose",
            [int(kind), who, peer_id, metadata, key],
            lambda tx: _propose(tx, int(kind), who, peer_id, _b32(metadata), _b32(key)),
        )
        return pid

    def approve(self, proposal_id: int) -> TxResult:
        return self._write("approve", [proposal_id], lambda tx: _approve_call(tx, proposal_id))[1]

    def proposal(self, proposal_id: int) -> ProposalInfo:
        def view(f: _Federation, context: str) -> ProposalInfo:
            p = f.proposals.get(proposal_id)
            if p is None:
                raise revert("UnknownProposal", context)
            return ProposalInfo(
                proposal_id=proposal_id,
                kind=p.kind,
                account=p.account,
                peer_id=p.peer_id,
                metadata_digest=p.metadata_digest,
                proposer=p.proposer,
                approvals=p.approvals,
                member_count_at_proposal=p.member_count_at_proposal,
                expires_at=p.expires_at,
                executed=p.executed,
                encryption_key=p.encryption_key,
            )

        return self._read("proposal", [proposal_id], view)

    def has_approved(self, proposal_id: int, member: str) -> bool:
        who = to_checksum_address(member)
        return self._read(
            "hasApproved", [proposal_id, who], lambda f, _: (proposal_id, who) in f.approved_by
        )

    # -- tasks -------------------------------------------------------------------------------------

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
        spec, model = bytes(spec_cid), bytes(initial_model_cid)
        args = [spec, model, quorum, round_duration, attest_duration, num_rounds, max_samples]
        task_id, _ = self._write(
            "createTask",
            args,
            lambda tx: _create_task(
                tx, spec, model, quorum, round_duration, attest_duration, num_rounds, max_samples
            ),
        )
        return task_id

    def task_count(self) -> int:
        return self._read("taskCount", [], lambda f, _: f.task_count)

    def task(self, task_id: int) -> TaskInfo:
        def view(f: _Federation, context: str) -> TaskInfo:
            s = _load_state(f, task_id, context)
            c = f.config[task_id]
            done = s.finalized_rounds >= c.num_rounds
            return TaskInfo(
                task_id=task_id,
                spec_digest=f.spec_digest[task_id],
                quorum=c.quorum,
                round_duration=c.round_duration,
                attest_duration=c.attest_duration,
                num_rounds=c.num_rounds,
                current_round=s.round,
                last_finalized_round=s.last_finalized_round,
                finalized_rounds=s.finalized_rounds,
                global_model_digest=f.model[task_id],
                status=TaskStatus.COMPLETED if done else TaskStatus.ACTIVE,
                max_samples=c.max_samples,
            )

        return self._read("task", [task_id], view)

    # -- rounds: writes ----------------------------------------------------------------------------

    def submit_update(
        self,
        task_id: int,
        round_no: int,
        update_cid: bytes,
        num_samples: int,
        epsilon_milli: int = 0,
    ) -> TxResult:
        cid = bytes(update_cid)
        return self._write(
            "submitUpdate",
            [task_id, round_no, cid, num_samples, epsilon_milli],
            lambda tx: _submit_update(tx, task_id, round_no, cid, num_samples, epsilon_milli),
        )[1]

    def close_updates(self, task_id: int, round_no: int) -> TxResult:
        return self._write(
            "closeUpdates", [task_id, round_no], lambda tx: _close_updates(tx, task_id, round_no)
        )[1]

    def attest_aggregate(
        self, task_id: int, round_no: int, aggregate_cid: bytes, scores_digest: bytes
    ) -> TxResult:
        cid, scores = bytes(aggregate_cid), bytes(scores_digest)
        return self._write(
            "attestAggregate",
            [task_id, round_no, cid, scores],
            lambda tx: _attest_aggregate(tx, task_id, round_no, cid, _b32(scores)),
        )[1]

    def fail_round(self, task_id: int, round_no: int) -> TxResult:
        return self._write(
            "failRound", [task_id, round_no], lambda tx: _fail_round(tx, task_id, round_no)
        )[1]

    def report_dissent(self, task_id: int, round_no: int, member: str) -> TxResult:
        who = to_checksum_address(member)
        return self._write(
            "reportDissent",
            [task_id, round_no, who],
            lambda tx: _report_dissent(tx, task_id, round_no, who),
        )[1]

    # -- rounds: reads ---------------------------------------------------------------------------

    def stored_round_info(self, task_id: int, round_no: int) -> RoundInfo:
        def view(f: _Federation, context: str) -> RoundInfo:
            s = _load_state(f, task_id, context)
            info = RoundInfo(
                task_id=task_id,
                round=round_no,
                status=RoundStatus.NONE,
                model_digest=ZERO32,
                submit_deadline=0,
                attest_deadline=0,
                eligible=0,
                need=0,
                submissions=0,
                aggregate_digest=ZERO32,
                scores_digest=ZERO32,
            )
            if round_no == 0 or round_no > s.round:
                return info
            if round_no == s.round:
                finalized = s.status is RoundStatus.FINALIZED
                return RoundInfo(
                    task_id=task_id,
                    round=round_no,
                    status=s.status,
                    model_digest=ZERO32 if finalized else f.model[task_id],
                    submit_deadline=s.submit_deadline,
                    attest_deadline=s.submit_deadline + s.attest_window,
                    eligible=s.eligible,
                    need=s.need,
                    submissions=s.submissions,
                    aggregate_digest=f.model[task_id] if finalized else ZERO32,
                    scores_digest=f.scores_root[(task_id, round_no)] if finalized else ZERO32,
                )
            root = f.scores_root.get((task_id, round_no))
            if root is None:
                return replace(info, status=RoundStatus.FAILED)
            last = round_no == s.last_finalized_round
            return replace(
                info,
                status=RoundStatus.FINALIZED,
                scores_digest=root,
                aggregate_digest=f.model[task_id] if last else ZERO32,
            )

        return self._read("roundInfo", [task_id, round_no], view)

    def submission_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, int]:
        who = to_checksum_address(member)

        def view(f: _Federation, _: str) -> tuple[bytes, int]:
            p = f.part.get((task_id, who))
            if round_no == 0 or p is None or p.submit_round != round_no:
                return ZERO32, 0
            return p.update_digest, p.num_samples

        return self._read("submissionOf", [task_id, round_no, who], view)

    def privacy_spent_of(self, task_id: int, member: str) -> tuple[int, int]:
        who = to_checksum_address(member)

        def view(f: _Federation, _: str) -> tuple[int, int]:
            p = f.part.get((task_id, who))
            return (0, 0) if p is None else (p.updates_submitted, p.epsilon_milli)

        return self._read("privacySpentOf", [task_id, who], view)

    def attestation_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, bytes]:
        who = to_checksum_address(member)

        def view(f: _Federation, _: str) -> tuple[bytes, bytes]:
            p = f.part.get((task_id, who))
            if round_no == 0 or p is None or p.attest_round != round_no:
                return ZERO32, ZERO32
            if not p.finalizer:
                return p.vote_aggregate, p.vote_scores
            s = f.state.get(task_id, _RoundState())
            agg = f.model[task_id] if round_no == s.last_finalized_round else ZERO32
            return agg, f.scores_root.get((task_id, round_no), ZERO32)

        return self._read("attestationOf", [task_id, round_no, who], view)

    def dissent_reported(self, task_id: int, round_no: int, member: str) -> bool:
        who = to_checksum_address(member)
        return self._read(
            "dissentReported",
            [task_id, round_no, who],
            lambda f, _: (task_id, round_no, who) in f.dissent,
        )

    # -- contributions ---------------------------------------------------------------------------

    def claim_contribution(
        self, task_id: int, round_no: int, score: int, proof: Sequence[bytes]
    ) -> TxResult:
        nodes = [bytes(p) for p in proof]
        return self._write(
            "claimContribution",
            [task_id, round_no, score, nodes],
            lambda tx: _claim_contribution(tx, task_id, round_no, score, [_b32(n) for n in nodes]),
        )[1]

    def contribution_of(self, account: str) -> int:
        who = to_checksum_address(account)
        return self._read("contributionOf", [who], lambda f, _: f.ledger.get(who, [0, 0])[0])

    def credit_of(self, account: str) -> int:
        who = to_checksum_address(account)
        return self._read("creditOf", [who], lambda f, _: f.ledger.get(who, [0, 0])[1])

    def has_claimed(self, task_id: int, round_no: int, member: str) -> bool:
        who = to_checksum_address(member)
        return self._read(
            "hasClaimed",
            [task_id, round_no, who],
            lambda f, _: (task_id, who, round_no) in f.claimed,
        )

    def __repr__(self) -> str:
        return (
            f"MemoryFederation({self.address} on memory chain {self.chain_id} "
            f"as {self.account_address})"
        )


__all__ = ["DEFAULT_CHAIN_ID", "Address", "MemoryChain", "MemoryFederation", "revert"]
