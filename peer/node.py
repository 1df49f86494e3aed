"""The peer's round loop: read the chain, decide, act, repeat.

The chain and IPFS are the truth.  Each pass re-reads the task and round from
the contract, asks :func:`consensus.protocol.next_action` what to do, and does
exactly that one step, so a peer that restarts (or misses every gossip message)
simply picks up where the chain says the federation is.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from consensus.aggregation import build_strategy
from consensus.protocol import Action, RoundStatus, RoundView, next_action
from consensus.scoring import sample_scores, scores_tree
from consensus.serialization import weights_from_bytes, weights_to_bytes
from consensus.strategies.abc import Update
from consensus.task_spec import TaskSpec
from fedchain.errors import FedchainError, LedgerError, ProtocolError
from peer.announcements import Domain, parse_announcement, sign_update
from peer.config import PeerConfig
from peer.content.abc import ContentStore
from peer.content.cid import cid_from_bytes, cid_to_bytes, digest_of_cid
from peer.gossip.abc import Gossip
from peer.identity import Identity
from peer.ledger.client import FederationClient
from peer.ledger.errors import AlreadyAttested, NotEligible, NotMember
from peer.training import LocalTrainer, StateDict, evaluate, reference_weights
from peer.updates import UpdateFetcher

log = logging.getLogger("fedchain.peer")


@dataclass
class RoundRecord:
    """What this peer did in one round, appended to ``state_dir/history.jsonl``."""

    round: int
    update_cid: str | None = None
    aggregate_cid: str | None = None
    accepted: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    scores_root: str | None = None
    score: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    status: str = ""
    agreed: bool | None = None
    started: float = 0.0
    global_model: StateDict | None = None


@dataclass
class PeerNode:
    cfg: PeerConfig
    identity: Identity
    ledger: FederationClient
    content: ContentStore
    gossip: Gossip | None
    spec: TaskSpec
    trainer: LocalTrainer
    clock: Callable[[], float] = time.time
    _records: dict[int, RoundRecord] = field(default_factory=dict)
    _model_cids: dict[bytes, str] = field(default_factory=dict)
    _fetcher: UpdateFetcher | None = None
    _attested: set[int] = field(default_factory=set)
    _pending_claims: list[tuple[int, int, bytes, list[bytes]]] = field(default_factory=list)
    _current_round: int | None = None
    _ineligible: set[int] = field(default_factory=set)
    _finished: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._fetcher = UpdateFetcher(self.content, timeout=self.cfg.ipfs.fetch_timeout)
        self._reference = reference_weights(self.spec)
        self._strategy = build_strategy(self.spec.aggregation)
        self._domain = Domain(chain_id=self.ledger.chain_id, contract=self.ledger.address)
        self._task_id = self.cfg.chain.task_id
        self._me = self.identity.address

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        log.info("peer %s (%s) joined task %d", self.cfg.institution.name, self._me, self._task_id)
        while True:
            task = self.ledger.task(self._task_id)
            round_no = task.current_round
            self._track_round(round_no)
            info = self.ledger.round_info(self._task_id, round_no)
            view = RoundView(
                status=RoundStatus(info.status),
                now=int(self.clock()),
                submit_deadline=info.submit_deadline,
                attest_deadline=info.attest_deadline,
                submissions=info.submissions,
                quorum=min(task.quorum, info.eligible),
                eligible=round_no not in self._ineligible,
                submitted=self._has_submitted(round_no),
                attested=round_no in self._attested,
                task_complete=task.completed,
            )
            action = next_action(view)
            if action is Action.DONE:
                self._finish_round(round_no)
                self._claim_contributions()
                log.info("task %d complete (round %d)", self._task_id, task.last_finalized_round)
                return 0
            try:
                self._do(action, round_no, info.model_digest)
            except NotMember:
                raise LedgerError(
                    f"{self._me} is no longer a member of the federation (removed by governance); "
                    "this peer stops"
                ) from None
            except NotEligible:
                log.info("round %d: admitted after it opened; joining the next one", round_no)
                self._ineligible.add(round_no)
            except AlreadyAttested:
                self._attested.add(round_no)
            except LedgerError as exc:
                # Another peer may have moved the round on first; the next pass re-reads the chain.
                log.info("round %d: %s refused: %s", round_no, action.value, exc)
            if action is Action.WAIT:
                self._handle_gossip(self.cfg.protocol.poll_interval)

    def _track_round(self, round_no: int) -> None:
        """Notice when the chain moves to a new round, and close the books on the old one."""
        if self._current_round == round_no:
            return
        if self._current_round is not None:
            self._finish_round(self._current_round)
        self._current_round = round_no
        self._record(round_no).started = time.monotonic()

    def _do(self, action: Action, round_no: int, model_digest: bytes) -> None:
        if action is Action.TRAIN_AND_SUBMIT:
            self._train_and_submit(round_no, model_digest)
        elif action is Action.CLOSE_UPDATES:
            self.ledger.close_updates(self._task_id, round_no)
            log.info("round %d: closed the update set after the deadline", round_no)
        elif action is Action.AGGREGATE_AND_ATTEST:
            self._aggregate_and_attest(round_no)
        elif action is Action.FAIL_ROUND:
            self.ledger.fail_round(self._task_id, round_no)
            log.warning("round %d: marked failed (no quorum before its deadline)", round_no)

    # -- steps ----------------------------------------------------------------

    def _record(self, round_no: int) -> RoundRecord:
        return self._records.setdefault(round_no, RoundRecord(round=round_no))

    def _has_submitted(self, round_no: int) -> bool:
        if self._record(round_no).update_cid is not None:
            return True
        digest, _ = self.ledger.submission_of(self._task_id, round_no, self._me)
        return digest != bytes(32)

    def _global_model(self, model_digest: bytes) -> StateDict:
        cid = self._model_cids.get(model_digest) or self.ledger.model_cid(
            self._task_id, model_digest
        )
        if digest_of_cid(cid) != model_digest:
            raise ProtocolError(f"global model CID {cid} does not match the on-chain digest")
        assert self._fetcher is not None
        data = self._fetcher.fetch_verified(cid)
        return weights_from_bytes(data, reference=self._reference)

    def _train_and_submit(self, round_no: int, model_digest: bytes) -> None:
        rec = self._record(round_no)
        t0 = time.perf_counter()
        global_weights = self._global_model(model_digest)
        t1 = time.perf_counter()
        weights = self.trainer.train(global_weights, round_no)
        t2 = time.perf_counter()
        data = weights_to_bytes(weights)
        cid = self.content.add(data)
        assert self._fetcher is not None
        self._fetcher.remember(cid, data)
        n = self.trainer.num_samples
        self.ledger.submit_update(self._task_id, round_no, cid_to_bytes(cid), n)
        t3 = time.perf_counter()
        rec.update_cid = cid
        rec.seconds.update(fetch_model=t1 - t0, train=t2 - t1, submit=t3 - t2)
        self._announce(round_no, cid, n)
        log.info("round %d: trained on %d samples, submitted %s", round_no, n, cid)

    def _announce(self, round_no: int, cid: str, n: int) -> None:
        if self.gossip is None:
            return
        ann = sign_update(
            self.identity.account,
            self._domain,
            task_id=self._task_id,
            round_no=round_no,
            cid=cid,
            num_samples=n,
        )
        try:
            self.gossip.publish(ann.to_bytes())
        except FedchainError as exc:
            log.warning("round %d: gossip announcement not sent: %s", round_no, exc)

    def _aggregate_and_attest(self, round_no: int) -> None:
        rec = self._record(round_no)
        t0 = time.perf_counter()
        assert self._fetcher is not None
        updates: list[Update] = []
        submissions = self.ledger.submissions(self._task_id, round_no)
        for sub in submissions:  # start every fetch at once; they are checked in chain order
            self._fetcher.prefetch(cid_from_bytes(sub.cid))
        for sub in submissions:
            cid = cid_from_bytes(sub.cid)
            try:
                data = self._fetcher.fetch_verified(cid)
                weights = weights_from_bytes(data, reference=self._reference)
            except FedchainError as exc:
                rec.left_out[sub.member] = str(exc)
                log.warning("round %d: left out the update of %s: %s", round_no, sub.member, exc)
                continue
            updates.append(Update(member=sub.member, weights=weights, num_samples=sub.num_samples))
        if not updates:
            log.warning(
                "round %d: no valid update to aggregate; waiting for the deadline", round_no
            )
            self._attested.add(round_no)
            return
        aggregate = self._strategy.aggregate(updates)
        agg_bytes = weights_to_bytes(aggregate)
        agg_cid = self.content.add(agg_bytes)
        self._fetcher.remember(agg_cid, agg_bytes)
        self._model_cids[digest_of_cid(agg_cid)] = agg_cid
        scores = sample_scores([(u.member, u.num_samples) for u in updates])
        tree = scores_tree(self._task_id, round_no, scores)
        t1 = time.perf_counter()
        self._attested.add(round_no)
        self.ledger.attest_aggregate(self._task_id, round_no, cid_to_bytes(agg_cid), tree.root)
        t2 = time.perf_counter()
        rec.aggregate_cid = agg_cid
        rec.accepted = [u.member for u in updates]
        rec.scores_root = "0x" + tree.root.hex()
        mine = [i for i, s in enumerate(scores) if s.member.lower() == self._me.lower()]
        if mine:
            rec.score = scores[mine[0]].score
            self._pending_claims.append((round_no, rec.score, tree.root, tree.proof(mine[0])))
        rec.seconds.update(aggregate=t1 - t0, attest=t2 - t1)
        rec.global_model = aggregate
        log.info(
            "round %d: aggregated %d updates (%d left out) into %s and attested",
            round_no,
            len(updates),
            len(rec.left_out),
            agg_cid,
        )
        self._fetcher.clear()
        self._fetcher.remember(agg_cid, agg_bytes)

    def _claim_contributions(self) -> None:
        """Claim credit for every finalized round whose agreed scores match ours."""
        for round_no, score, root, proof in self._pending_claims:
            info = self.ledger.round_info(self._task_id, round_no)
            if RoundStatus(info.status) is not RoundStatus.FINALIZED or info.scores_digest != root:
                log.info("round %d: the agreed scores differ from ours; nothing to claim", round_no)
                continue
            try:
                self.ledger.claim_contribution(self._task_id, round_no, score, proof)
            except LedgerError as exc:
                log.info("round %d: contribution not claimed: %s", round_no, exc)
        self._pending_claims.clear()

    # -- gossip ---------------------------------------------------------------

    def _handle_gossip(self, timeout: float) -> None:
        if self.gossip is None:
            time.sleep(timeout)
            return
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.gossip.receive(timeout=left)
            if msg is None:
                return
            try:
                ann = parse_announcement(msg.data, self._domain)
                if ann.task_id != self._task_id:
                    continue
                if not self.ledger.is_member(ann.member):
                    raise ProtocolError(f"announcement from non-member {ann.member}")
                if self.ledger.peer_id_of(ann.member) != msg.sender_peer_id:
                    raise ProtocolError(
                        f"announcement for {ann.member} came from peer {msg.sender_peer_id}, "
                        "not the peer ID registered on-chain"
                    )
            except FedchainError as exc:
                log.info("ignored a gossip message from %s: %s", msg.sender_peer_id, exc)
                continue
            assert self._fetcher is not None
            self._fetcher.prefetch(ann.cid)

    # -- records ----------------------------------------------------------------

    def _finish_round(self, round_no: int) -> None:
        """Append what happened in ``round_no`` to ``history.jsonl``, once, when it has ended."""
        if round_no in self._finished:
            return
        info = self.ledger.round_info(self._task_id, round_no)
        status = RoundStatus(info.status)
        if status not in (RoundStatus.FINALIZED, RoundStatus.FAILED):
            return
        self._finished.add(round_no)
        rec = self._record(round_no)
        rec.status = status.name.lower()
        if rec.started:
            rec.seconds["round"] = time.monotonic() - rec.started
            rec.seconds["overhead"] = rec.seconds["round"] - rec.seconds.get("train", 0.0)
        entry: dict[str, Any] = {
            k: v for k, v in rec.__dict__.items() if k not in ("global_model", "started")
        }
        if status is RoundStatus.FINALIZED:
            agreed_digest = info.aggregate_digest
            rec.agreed = rec.aggregate_cid is not None and digest_of_cid(rec.aggregate_cid) == (
                agreed_digest
            )
            entry["agreed"] = rec.agreed
            try:
                weights = rec.global_model if rec.agreed else None
                if weights is None:
                    weights = self._global_model(agreed_digest)
                data = self.trainer.data
                entry["local_test"] = evaluate(self.spec, weights, data.x_test, data.y_test)
            except FedchainError as exc:
                log.warning("round %d: agreed model not evaluated locally: %s", round_no, exc)
        path = self.cfg.state_dir / "history.jsonl"
        with path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")
        rec.global_model = None

    def close(self) -> None:
        if self._fetcher is not None:
            self._fetcher.close()
