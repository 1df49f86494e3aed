"""Typed client for one deployed Federation contract, acting as one account.

Every contract function has a method here.  Writes are signed locally and sent
raw (:mod:`peer.ledger.sender`), return a :class:`TxResult` with the decoded
events, and raise the named exception of :mod:`peer.ledger.errors` when the
contract refuses them.  Reads go straight to ``eth_call``.  History that the
contract keeps only in its logs (each update's CID, a past round's deadlines and
aggregate) is read from the logs, so :meth:`FederationClient.round_info` and
:meth:`FederationClient.submissions` describe any round, not just the open one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from eth_abi.exceptions import DecodingError
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from web3 import HTTPProvider, Web3

from fedchain.errors import LedgerError, ServiceUnavailableError
from peer.ledger.abc import FederationLedger
from peer.ledger.abi import ContractAbi
from peer.ledger.artifact import ContractArtifact, shipped_artifact
from peer.ledger.errors import NotAFederation, call_context, decode_revert
from peer.ledger.events import (
    ContractEvent,
    EventDecoder,
    ProposalCreated,
    TaskCreated,
)
from peer.ledger.rpc import RpcError, endpoint_of, rpc
from peer.ledger.sender import TransactionSender
from peer.ledger.types import (
    ProposalInfo,
    ProposalKind,
    RoundInfo,
    RoundStatus,
    TaskInfo,
    TaskStatus,
    TxResult,
)

E = TypeVar("E", bound=ContractEvent)

ZERO32 = bytes(32)
ZERO_ADDRESS = "0x0000000000000000000000000000000000000000"

GAS_LIMITS: dict[str, int] = {
    "submitUpdate": 200_000,
    "closeUpdates": 120_000,
    "attestAggregate": 350_000,
    "failRound": 150_000,
    "reportDissent": 120_000,
    "claimContribution": 200_000,
    "propose": 400_000,
    "approve": 400_000,
    "setEncryptionKey": 120_000,
}
"""Generous fixed gas per call (measured use is well below; see scripts/bench/gas)."""
CREATE_TASK_BASE_GAS = 300_000
CREATE_TASK_GAS_PER_MEMBER = 110_000
CLAIM_GAS_PER_PROOF_NODE = 2_000
DEPLOY_GAS_MARGIN = 1.25
FEDERATION_MAX_MEMBERS = 2**16 - 1
"""What ``MAX_MEMBERS()`` returns on every Federation: the constructor's identity probe."""


def connect(rpc_url: str, *, timeout: float = 10.0) -> Web3:
    """A Web3 for ``rpc_url`` that has answered ``eth_chainId``, or ServiceUnavailableError."""
    w3 = Web3(HTTPProvider(rpc_url, request_kwargs={"timeout": timeout}))
    try:
        rpc(w3, "eth_chainId", [])
    except (ServiceUnavailableError, RpcError) as exc:
        raise ServiceUnavailableError(
            f"cannot reach the chain RPC at {rpc_url}: {exc}; start the chain (Anvil or Ganache) "
            "or fix chain.rpc_url in the configuration"
        ) from exc
    return w3


def _b(hex_or_bytes: Any) -> bytes:
    return bytes(hex_or_bytes)


class FederationClient(FederationLedger):
    """One member's (or an observer's) handle on a deployed Federation contract.

    The constructor checks that ``address`` holds a Federation (code, and a view answering as
    one) and raises :class:`~peer.ledger.errors.NotAFederation` otherwise.  ``receipt_timeout``
    bounds every wait for a transaction to be mined
    (:class:`~peer.ledger.errors.ReceiptTimeout` after it).
    """

    def __init__(
        self,
        w3: Web3,
        address: str,
        account: LocalAccount,
        *,
        gas_limit: int | None = None,
        receipt_timeout: float = 60.0,
        poll_interval: float = 0.005,
        artifact: ContractArtifact | None = None,
    ) -> None:
        self.w3 = w3
        self.address = to_checksum_address(address)
        self.account = account
        self.gas_limit = gas_limit
        self.artifact = artifact or shipped_artifact()
        self.abi = ContractAbi(self.artifact.abi)
        self.decoder = EventDecoder(self.abi)
        self.chain_id = int(rpc(w3, "eth_chainId", []), 16)
        self.sender = TransactionSender(
            w3, account, self.chain_id, poll_interval=poll_interval, timeout=receipt_timeout
        )
        self.last_result: TxResult | None = None
        self._require_federation()

    # -- plumbing ----------------------------------------------------------------------------

    def _require_federation(self) -> None:
        """Fail at start-up, not at the first transaction, when the address is wrong."""
        where = f"chain {self.chain_id} ({endpoint_of(self.w3)})"
        fix = "check chain.contract and chain.rpc_url"
        code = rpc(self.w3, "eth_getCode", [self.address, "latest"])
        if not code or code == "0x":
            raise NotAFederation(
                f"no Federation contract at {self.address}: no code there on {where}; {fix}"
            )
        try:
            (max_members,) = self._call("MAX_MEMBERS")
        except (LedgerError, DecodingError) as exc:
            raise NotAFederation(
                f"no Federation contract at {self.address}: the contract there does not answer "
                f"MAX_MEMBERS() like one ({exc}) on {where}; {fix}"
            ) from None
        if max_members != FEDERATION_MAX_MEMBERS:
            raise NotAFederation(
                f"no Federation contract at {self.address}: MAX_MEMBERS() returned {max_members}, "
                f"a Federation returns {FEDERATION_MAX_MEMBERS}; {fix}"
            )

    def _context(self, fn: str, args: Sequence[Any]) -> str:
        return call_context(fn, args, self.account.address)

    def _call(self, fn: str, *args: Any) -> tuple[Any, ...]:
        data = self.abi.encode_call(fn, args)
        try:
            out = rpc(
                self.w3, "eth_call", [{"to": self.address, "data": "0x" + data.hex()}, "latest"]
            )
        except RpcError as exc:
            if exc.revert_data:
                raise decode_revert(self.abi, exc.revert_data, self._context(fn, args)) from None
            raise LedgerError(f"{self._context(fn, args)} failed: {exc.message}") from exc
        return self.abi.decode_output(fn, bytes.fromhex(str(out)[2:]))

    def _transact(self, fn: str, args: Sequence[Any], gas: int | None = None) -> TxResult:
        data = self.abi.encode_call(fn, args)
        limit = self.gas_limit or gas or GAS_LIMITS[fn]
        context = self._context(fn, args)
        receipt = self.sender.send(
            self.address,
            data,
            limit,
            context=context,
            decode_revert=lambda raw, ctx: decode_revert(self.abi, raw, ctx),
        )
        result = self._result(receipt)
        self.last_result = result
        return result

    def _result(self, receipt: dict[str, Any]) -> TxResult:
        mine = [
            log
            for log in receipt.get("logs", [])
            if to_checksum_address(log["address"]) == self.address
        ]
        return TxResult(
            tx_hash=str(receipt["transactionHash"]),
            block_number=int(receipt["blockNumber"], 16),
            gas_used=int(receipt["gasUsed"], 16),
            receipt=receipt,
            events=tuple(self.decoder.decode_all(mine)),
        )

    def logs(
        self,
        kinds: Iterable[type[ContractEvent]],
        *topics: int | str | None,
        from_block: int = 0,
    ) -> list[ContractEvent]:
        """Events of the given kinds, filtered by indexed arguments in order (None = any).

        Integers are indexed ``uint``s (task id, round), strings are addresses.
        Results are in chain order (block, log index).
        """
        topic_filter: list[Any] = [["0x" + self.decoder.topic(k).hex() for k in kinds]]
        for t in topics:
            if t is None:
                topic_filter.append(None)
            elif isinstance(t, int):
                topic_filter.append("0x" + t.to_bytes(32, "big").hex())
            else:
                topic_filter.append("0x" + bytes(12).hex() + to_checksum_address(t)[2:].lower())
        query = {
            "address": self.address,
            "fromBlock": hex(from_block),
            "toBlock": "latest",
            "topics": topic_filter,
        }
        raw = rpc(self.w3, "eth_getLogs", [query])
        events = self.decoder.decode_all(raw)
        events.sort(key=lambda e: (e.block_number, e.log_index))
        return events

    def block_number(self) -> int:
        return int(rpc(self.w3, "eth_blockNumber", []), 16)

    # -- membership ------------------------------------------------------------------------------

    def is_member(self, account: str) -> bool:
        return bool(self._call("isMember", to_checksum_address(account))[0])

    def member_count(self) -> int:
        return int(self._call("memberCount")[0])

    def peer_id_of(self, account: str) -> str:
        return str(self._call("peerIdOf", to_checksum_address(account))[0])

    def member_by_peer_id(self, peer_id: str) -> str | None:
        found = str(self._call("memberByPeerId", peer_id)[0])
        return None if found == ZERO_ADDRESS else found

    def members(self) -> list[str]:
        return list(self._call("members")[0])

    def approval_bps(self) -> int:
        return int(self._call("approvalBps")[0])

    def encryption_key_of(self, account: str) -> bytes:
        return _b(self._call("encryptionKeyOf", to_checksum_address(account))[0])

    def audit_key(self) -> bytes:
        return _b(self._call("auditKey")[0])

    def set_encryption_key(self, key: bytes) -> TxResult:
        return self._transact("setEncryptionKey", [bytes(key)])

    # -- governance -------------------------------------------------------------------------------

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
        args = [int(kind), to_checksum_address(account), peer_id, metadata_digest, encryption_key]
        result = self._transact("propose", args)
        return result.event(ProposalCreated).proposal_id

    def approve(self, proposal_id: int) -> TxResult:
        return self._transact("approve", [proposal_id])

    def proposal(self, proposal_id: int) -> ProposalInfo:
        (v,) = self._call("proposal", proposal_id)
        kind, account, peer_id, metadata, proposer, approvals, count, expires, executed, key = v
        return ProposalInfo(
            proposal_id=proposal_id,
            kind=ProposalKind(kind),
            account=to_checksum_address(account),
            peer_id=str(peer_id),
            metadata_digest=_b(metadata),
            proposer=to_checksum_address(proposer),
            approvals=int(approvals),
            member_count_at_proposal=int(count),
            expires_at=int(expires),
            executed=bool(executed),
            encryption_key=_b(key),
        )

    def has_approved(self, proposal_id: int, member: str) -> bool:
        return bool(self._call("hasApproved", proposal_id, to_checksum_address(member))[0])

    # -- tasks -----------------------------------------------------------------------------------

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
        """Create a task (round 1 opens at once); return its id (see ``last_result``).

        ``quorum`` must be more than half the current members (QuorumNotMajority otherwise);
        ``max_samples`` caps the samples any one update may claim (SamplesAboveCap above it).
        """
        gas = CREATE_TASK_BASE_GAS + CREATE_TASK_GAS_PER_MEMBER * self.member_count()
        result = self._transact(
            "createTask",
            [
                bytes(spec_cid),
                bytes(initial_model_cid),
                quorum,
                round_duration,
                attest_duration,
                num_rounds,
                max_samples,
            ],
            gas=gas,
        )
        return result.event(TaskCreated).task_id

    def task_count(self) -> int:
        return int(self._call("taskCount")[0])

    def task(self, task_id: int) -> TaskInfo:
        (v,) = self._call("task", task_id)
        (
            spec,
            quorum,
            round_d,
            attest_d,
            num_rounds,
            current,
            last_final,
            finalized,
            model,
            status,
            max_samples,
        ) = v
        return TaskInfo(
            task_id=task_id,
            spec_digest=_b(spec),
            quorum=int(quorum),
            round_duration=int(round_d),
            attest_duration=int(attest_d),
            num_rounds=int(num_rounds),
            current_round=int(current),
            last_finalized_round=int(last_final),
            finalized_rounds=int(finalized),
            global_model_digest=_b(model),
            status=TaskStatus(status),
            max_samples=int(max_samples),
        )

    # -- rounds: writes ----------------------------------------------------------------------------

    def submit_update(
        self,
        task_id: int,
        round_no: int,
        update_cid: bytes,
        num_samples: int,
        epsilon_milli: int = 0,
    ) -> TxResult:
        return self._transact(
            "submitUpdate", [task_id, round_no, bytes(update_cid), num_samples, epsilon_milli]
        )

    def close_updates(self, task_id: int, round_no: int) -> TxResult:
        return self._transact("closeUpdates", [task_id, round_no])

    def attest_aggregate(
        self, task_id: int, round_no: int, aggregate_cid: bytes, scores_digest: bytes
    ) -> TxResult:
        return self._transact(
            "attestAggregate", [task_id, round_no, bytes(aggregate_cid), bytes(scores_digest)]
        )

    def fail_round(self, task_id: int, round_no: int) -> TxResult:
        return self._transact("failRound", [task_id, round_no])

    def report_dissent(self, task_id: int, round_no: int, member: str) -> TxResult:
        """Record that ``member``'s attestation of the last finalized round disagreed with it."""
        return self._transact("reportDissent", [task_id, round_no, to_checksum_address(member)])

    def claim_contribution(
        self, task_id: int, round_no: int, score: int, proof: Sequence[bytes]
    ) -> TxResult:
        nodes = [bytes(p) for p in proof]
        gas = GAS_LIMITS["claimContribution"] + CLAIM_GAS_PER_PROOF_NODE * len(nodes)
        return self._transact("claimContribution", [task_id, round_no, score, nodes], gas=gas)

    # -- rounds: reads ----------------------------------------------------------------------

    def stored_round_info(self, task_id: int, round_no: int) -> RoundInfo:
        (v,) = self._call("roundInfo", task_id, round_no)
        status, model, submit_dl, attest_dl, eligible, submissions, agg, scores, need = v
        return RoundInfo(
            task_id=task_id,
            round=round_no,
            status=RoundStatus(status),
            model_digest=_b(model),
            submit_deadline=int(submit_dl),
            attest_deadline=int(attest_dl),
            eligible=int(eligible),
            need=int(need),
            submissions=int(submissions),
            aggregate_digest=_b(agg),
            scores_digest=_b(scores),
        )

    def submission_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, int]:
        """(digest, numSamples) of ``member``'s update in ``round_no`` while storage holds it
        (the open round and until the member submits again); zeros otherwise."""
        digest, n = self._call("submissionOf", task_id, round_no, to_checksum_address(member))
        return _b(digest), int(n)

    def privacy_spent_of(self, task_id: int, member: str) -> tuple[int, int]:
        """(updates ``member`` submitted in the task, epsilon in thousandths it committed with
        the latest)."""
        updates, eps = self._call("privacySpentOf", task_id, to_checksum_address(member))
        return int(updates), int(eps)

    def attestation_of(self, task_id: int, round_no: int, member: str) -> tuple[bytes, bytes]:
        """(aggregateDigest, scoresDigest) ``member`` attested in ``round_no`` while storage
        holds it; zeros otherwise."""
        agg, scores = self._call("attestationOf", task_id, round_no, to_checksum_address(member))
        return _b(agg), _b(scores)

    def dissent_reported(self, task_id: int, round_no: int, member: str) -> bool:
        """Whether ``member``'s dissent in ``round_no`` is on record (skip a duplicate report)."""
        found = self._call("dissentReported", task_id, round_no, to_checksum_address(member))
        return bool(found[0])

    # -- contributions ---------------------------------------------------------------------------

    def contribution_of(self, account: str) -> int:
        return int(self._call("contributionOf", to_checksum_address(account))[0])

    def credit_of(self, account: str) -> int:
        return int(self._call("creditOf", to_checksum_address(account))[0])

    def has_claimed(self, task_id: int, round_no: int, member: str) -> bool:
        return bool(self._call("hasClaimed", task_id, round_no, to_checksum_address(member))[0])

    def __repr__(self) -> str:
        return (
            f"FederationClient({self.address} on chain {self.chain_id} as {self.account.address})"
        )


def deploy(
    w3: Web3,
    account: LocalAccount,
    founders: Sequence[str],
    peer_ids: Sequence[str],
    approval_bps: int,
    *,
    encryption_keys: Sequence[bytes] = (),
    audit_key: bytes = ZERO32,
    artifact: ContractArtifact | None = None,
    receipt_timeout: float = 60.0,
) -> FederationClient:
    """Deploy a Federation with its founding members; return a client acting as ``account``.

    The deployer gets no power over the contract; ``account`` need not be a founder.
    ``encryption_keys`` (the founders' X25519 public keys, same order) and ``audit_key`` enable
    members-only weights; leave both empty for a federation without them.  The deployment's
    receipt and events are in the returned client's ``last_result``.
    """
    artifact = artifact or shipped_artifact()
    abi = ContractAbi(artifact.abi)
    args = [
        [to_checksum_address(a) for a in founders],
        list(peer_ids),
        [bytes(k) for k in encryption_keys],
        bytes(audit_key),
        approval_bps,
    ]
    data = bytes.fromhex(artifact.bytecode[2:]) + abi.encode_constructor(args)
    context = f"deploy Federation({len(founders)} founders, approvalBps={approval_bps})"
    call = {"from": account.address, "data": "0x" + data.hex()}
    try:
        estimate = int(rpc(w3, "eth_estimateGas", [call]), 16)
    except RpcError as exc:
        if exc.revert_data:
            raise decode_revert(abi, exc.revert_data, context) from None
        raise LedgerError(f"{context}: the chain refused the deployment: {exc.message}") from exc
    chain_id = int(rpc(w3, "eth_chainId", []), 16)
    sender = TransactionSender(w3, account, chain_id, timeout=receipt_timeout)
    receipt = sender.send(
        None,
        data,
        int(estimate * DEPLOY_GAS_MARGIN),
        context=context,
        decode_revert=lambda raw, ctx: decode_revert(abi, raw, ctx),
    )
    address = receipt.get("contractAddress")
    if not address:
        raise LedgerError(f"{context}: receipt {receipt['transactionHash']} names no contract")
    client = FederationClient(
        w3, str(address), account, artifact=artifact, receipt_timeout=receipt_timeout
    )
    client.last_result = client._result(receipt)
    return client
