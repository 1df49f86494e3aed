"""The peer's round loop: read the chain, decide, act, repeat.

The chain and IPFS are the truth.  Each pass re-reads the task and round from
the contract, asks :func:`consensus.protocol.next_action` what to do, and does
exactly that one step, so a peer that restarts (or misses every gossip message)
simply picks up where the chain says the federation is.

Nothing another member sends can stop this loop: an update that cannot be
fetched or decoded is left out with its reason; an agreed model that cannot be
fetched, trained or evaluated is recorded as such and the peer keeps following
the chain.  An outage of the chain RPC or the own Kubo is ridden out
(:mod:`peer.resilience`); only an outage longer than ``protocol.max_outage`` or a
removal from the federation ends the peer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from consensus.aggregation import build_strategy
from consensus.protocol import Action, RoundStatus, RoundView, effective_quorum, next_action
from consensus.serialization import model_bytes_limit, weights_from_bytes, weights_to_bytes
from consensus.strategies.abc import StateDict
from consensus.task_spec import TaskSpec
from fedchain.errors import (
    ContentError,
    FedchainError,
    LedgerError,
    ProtocolError,
    ServiceUnavailableError,
)
from models.tasks import Learner, reference_weights
from peer.announcements import Domain, UpdateAnnouncement, sign_update
from peer.claims import Claim, ClaimBook, scores_root_and_claim
from peer.config import PeerConfig
from peer.content.abc import ContentStore
from peer.content.cid import cid_to_bytes, digest_of_cid
from peer.gossip.abc import Gossip
from peer.identity import Identity
from peer.ledger.client import FederationClient
from peer.ledger.errors import AlreadyAttested, NotEligible, NotMember
from peer.ledger.types import Submission
from peer.records import History
from peer.resilience import OutageGuard
from peer.round_updates import RoundUpdates, collect_updates
from peer.updates import UpdateFetcher

log = logging.getLogger("fedchain.peer")

SWARM_CHECK_SECONDS = 15.0
"""How often the peer checks that its own Kubo still has swarm peers."""


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
    dissent: list[str] = field(default_factory=list)
    not_trained: str | None = None
    started: float = 0.0
    global_model: StateDict | None = None
    claim: Claim | None = None

    def entry(self) -> dict[str, Any]:
        hidden = ("global_model", "started", "claim")
        return {k: v for k, v in self.__dict__.items() if k not in hidden}


@dataclass
class PeerNode:
    cfg: PeerConfig
    identity: Identity
    ledger: FederationClient
    content: ContentStore
    gossip: Gossip | None
    spec: TaskSpec
    trainer: Learner
    clock: Callable[[], float] = time.time
    _records: dict[int, RoundRecord] = field(default_factory=dict)
    _model_cids: dict[bytes, str] = field(default_factory=dict)
    _attested: set[int] = field(default_factory=set)
    _current_round: int | None = None
    _ineligible: set[int] = field(default_factory=set)
    _finished: set[int] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._reference = reference_weights(self.spec)
        self._fetcher = UpdateFetcher(
            self.content,
            timeout=self.cfg.ipfs.fetch_timeout,
            max_bytes=model_bytes_limit(self._reference),
        )
        self._strategy = build_strategy(self.spec.aggregation)
        self._domain = Domain(chain_id=self.ledger.chain_id, contract=self.ledger.address)
        self._task_id = self.cfg.chain.task_id
        self._me = self.identity.address
        self._history = History(self.cfg.state_dir)
        self._claims = ClaimBook(self.ledger, self._task_id, self._me)
        self._guard = OutageGuard(max_outage=self.cfg.protocol.max_outage)
        # Optional work (evaluating the agreed model, writing its record) runs beside the loop.
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="records")
        self._pending: list[Future[None]] = []
        self._next_swarm_check = 0.0
        self._max_samples = 0

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        log.info("peer %s (%s) joined task %d", self.cfg.institution.name, self._me, self._task_id)
        caught_up = False
        while True:
            try:
                self._raise_background_errors()
                if not caught_up:
                    self._catch_up_on_start()
                    caught_up = True
                done = self._pass()
                self._guard.succeeded()
            except ServiceUnavailableError as exc:
                self._guard.failed(exc)
                self._reconnect_swarm()
                continue
            if done:
                self._drain_background()
                return 0

    def _pass(self) -> bool:
        """One read-decide-act step; True when the task is complete."""
        self._check_swarm()
        task = self.ledger.task(self._task_id)
        self._max_samples = task.max_samples
        round_no = task.current_round
        self._track_round(round_no)
        info = self.ledger.round_info(self._task_id, round_no)
        view = RoundView(
            status=RoundStatus(info.status),
            now=int(self.clock()),
            submit_deadline=info.submit_deadline,
            attest_deadline=info.attest_deadline,
            submissions=info.submissions,
            quorum=info.need or effective_quorum(task.quorum, info.eligible),
            eligible=round_no not in self._ineligible,
            submitted=self._has_submitted(round_no),
            attested=round_no in self._attested,
            task_complete=task.completed,
        )
        action = next_action(view)
        if action is Action.DONE:
            self._finish_round(round_no)
            log.info("task %d complete (round %d)", self._task_id, task.last_finalized_round)
            return True
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
        except ServiceUnavailableError:
            raise
        except LedgerError as exc:
            # Another peer may have moved the round on first; the next pass re-reads the chain.
            log.info("round %d: %s refused: %s", round_no, action.value, exc)
        if action is Action.WAIT:
            self._handle_gossip(self.cfg.protocol.poll_interval)
        return False

    def _track_round(self, round_no: int) -> None:
        """Notice when the chain moves to a new round, and close the books on the old ones."""
        if self._current_round == round_no:
            return
        if self._current_round is not None:
            for past in range(self._current_round, round_no):
                self._finish_round(past)
        self._current_round = round_no
        self._record(round_no).started = time.monotonic()

    def _do(self, action: Action, round_no: int, model_digest: bytes) -> None:
        if action is Action.TRAIN_AND_SUBMIT:
            self._train_and_submit(round_no, model_digest)
        elif action is Action.CLOSE_UPDATES:
            self.ledger.close_updates(self._task_id, round_no)
            log.info("round %d: closed the update set after the deadline", round_no)
        elif action is Action.AGGREGATE_AND_ATTEST:
            self._aggregate_and_attest(round_no, model_digest)
        elif action is Action.FAIL_ROUND:
            self.ledger.fail_round(self._task_id, round_no)
            log.warning("round %d: marked failed (no quorum before its deadline)", round_no)

    # -- steps ----------------------------------------------------------------

    def _record(self, round_no: int) -> RoundRecord:
        return self._records.setdefault(round_no, RoundRecord(round=round_no))

    def _has_submitted(self, round_no: int) -> bool:
        rec = self._record(round_no)
        if rec.update_cid is not None or rec.not_trained is not None:
            return True
        digest, _ = self.ledger.submission_of(self._task_id, round_no, self._me)
        return digest != bytes(32)

    def _global_model(self, model_digest: bytes) -> StateDict:
        cid = self._model_cids.get(model_digest) or self.ledger.model_cid(
            self._task_id, model_digest
        )
        if digest_of_cid(cid) != model_digest:
            raise ProtocolError(f"global model CID {cid} does not match the on-chain digest")
        data = self._fetcher.fetch_verified(cid)
        return weights_from_bytes(data, reference=self._reference)

    def _train_and_submit(self, round_no: int, model_digest: bytes) -> None:
        rec = self._record(round_no)
        t0 = time.perf_counter()
        try:
            global_weights = self._global_model(model_digest)
        except ProtocolError as exc:
            self._skip_training(rec, f"the agreed global model is unusable: {exc}")
            return
        except ContentError as exc:
            # Quorum members pin the agreed model: keep trying until the deadline.
            log.warning("round %d: global model not fetched yet: %s", round_no, exc)
            return
        t1 = time.perf_counter()
        try:
            weights = self.trainer.train(global_weights, round_no)
        except (FedchainError, ValueError, RuntimeError) as exc:
            self._skip_training(rec, f"local training failed on the agreed model: {exc}")
            return
        bad = [k for k, v in weights.items() if not bool(torch.isfinite(v).all())]
        if bad:
            self._skip_training(
                rec, f"training from the agreed model gave non-finite weights ({', '.join(bad)})"
            )
            return
        t2 = time.perf_counter()
        data = weights_to_bytes(weights)
        cid = self.content.add(data)
        self._fetcher.remember(cid, data)
        n = min(self.trainer.num_samples, self._max_samples or self.trainer.num_samples)
        self.ledger.submit_update(self._task_id, round_no, cid_to_bytes(cid), n)
        t3 = time.perf_counter()
        rec.update_cid = cid
        rec.seconds.update(fetch_model=t1 - t0, train=t2 - t1, submit=t3 - t2)
        self._announce(round_no, cid, n)
        log.info("round %d: trained on %d samples, submitted %s", round_no, n, cid)

    def _skip_training(self, rec: RoundRecord, reason: str) -> None:
        rec.not_trained = reason
        log.error("round %d: not training this round: %s", rec.round, reason)

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

    def _collect(
        self, round_no: int, submissions: list[Submission], model_digest: bytes
    ) -> RoundUpdates:
        """The round's checked updates; an own-Kubo outage is raised, never held against others."""
        collected = collect_updates(
            submissions,
            model_digest,
            self._fetcher,
            self._reference,
            max_samples=self._ledger_cap(),
            max_abs_weight=self.spec.max_abs_weight,
        )
        self._require_own_kubo_healthy(round_no, collected.unavailable)
        return collected

    def _accepted_after_fetch(
        self, round_no: int, submissions: list[Submission], model_digest: bytes
    ) -> list[tuple[str, int]]:
        collected = self._collect(round_no, submissions, model_digest)
        return [(u.member, u.num_samples) for u in collected.accepted]

    def _ledger_cap(self) -> int:
        if not self._max_samples:
            self._max_samples = self.ledger.task(self._task_id).max_samples
        return self._max_samples

    def _aggregate_and_attest(self, round_no: int, model_digest: bytes) -> None:
        rec = self._record(round_no)
        t0 = time.perf_counter()
        submissions = self.ledger.submissions(self._task_id, round_no)
        collected = self._collect(round_no, submissions, model_digest)
        rec.left_out = collected.left_out
        for member, reason in collected.left_out.items():
            log.warning("round %d: left out the update of %s: %s", round_no, member, reason)
        updates = collected.accepted
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
        accepted = [(u.member, u.num_samples) for u in updates]
        root, claim = scores_root_and_claim(self._task_id, round_no, self._me, accepted)
        t1 = time.perf_counter()
        self._attested.add(round_no)
        self.ledger.attest_aggregate(self._task_id, round_no, cid_to_bytes(agg_cid), root)
        t2 = time.perf_counter()
        rec.aggregate_cid = agg_cid
        rec.accepted = [u.member for u in updates]
        rec.scores_root = "0x" + root.hex()
        rec.claim = claim
        rec.score = claim.score if claim is not None else None
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

    # -- own Kubo health --------------------------------------------------------

    def _require_own_kubo_healthy(self, round_no: int, unavailable: list[str]) -> None:
        """A missing update is only held against its sender if our own Kubo can reach the swarm."""
        if not unavailable or not self.cfg.ipfs.swarm_peers:
            return
        if self.content.swarm_peer_count() == 0:
            raise ServiceUnavailableError(
                f"round {round_no}: updates of {', '.join(unavailable)} did not arrive and the "
                f"own Kubo at {self.cfg.ipfs.api} (ipfs.api) has no swarm peers; not leaving "
                "anyone out until it is reconnected"
            )

    def _check_swarm(self) -> None:
        now = time.monotonic()
        if now < self._next_swarm_check or not self.cfg.ipfs.swarm_peers:
            return
        self._next_swarm_check = now + SWARM_CHECK_SECONDS
        if self.content.swarm_peer_count() == 0:
            log.error(
                "own Kubo at %s (ipfs.api) has no swarm peers; reconnecting to ipfs.swarm_peers",
                self.cfg.ipfs.api,
            )
            self._reconnect_swarm()

    def _reconnect_swarm(self) -> None:
        for addr in self.cfg.ipfs.swarm_peers:
            try:
                self.content.connect(addr)
            except FedchainError as exc:
                log.debug("swarm peer %s not reachable: %s", addr, exc)

    # -- gossip ---------------------------------------------------------------

    def _handle_gossip(self, timeout: float) -> None:
        """Prefetch what valid announcements name; gossip validated them before delivery."""
        if self.gossip is None:
            time.sleep(timeout)
            return
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            msg = self.gossip.receive(timeout=left)
            if msg is None:
                return
            if isinstance(msg.validated, UpdateAnnouncement):
                self._fetcher.prefetch(msg.validated.cid)

    # -- records, claims, dissent -------------------------------------------------

    def _catch_up_on_start(self) -> None:
        """Claims and history lines for every round that ended while this peer was away."""
        task = self.ledger.task(self._task_id)
        self._max_samples = task.max_samples
        made = self._claims.rebuild(self._accepted_after_fetch)
        if made:
            log.info("claimed contributions of %d earlier rounds", made)
        written = self._history.rounds()
        last_ended = task.current_round if task.completed else task.current_round - 1
        for round_no in range(1, last_ended + 1):
            if round_no not in written:
                self._finish_round(round_no, missed=True)

    def _finish_round(self, round_no: int, *, missed: bool = False) -> None:
        """Record what happened in ``round_no`` once it has ended, claim, report dissent."""
        if round_no in self._finished:
            return
        info = self.ledger.round_info(self._task_id, round_no)
        status = RoundStatus(info.status)
        if status not in (RoundStatus.FINALIZED, RoundStatus.FAILED):
            return
        rec = self._record(round_no)
        rec.status = status.name.lower()
        if rec.started:
            rec.seconds["round"] = time.monotonic() - rec.started
            rec.seconds["overhead"] = rec.seconds["round"] - rec.seconds.get("train", 0.0)
        entry = rec.entry()
        if missed:
            entry["missed"] = True
        if self.gossip is not None:
            stats = self.gossip.stats()  # totals since start: a flood shows up in the record
            entry["gossip"] = {
                "accepted": stats.accepted,
                "rejected": dict(stats.rejected),
                "inbox_dropped": stats.inbox_dropped,
                "outbound_dropped": stats.outbound_dropped,
            }
        weights: StateDict | None = None
        if status is RoundStatus.FINALIZED:
            agreed_digest = info.aggregate_digest
            rec.agreed = rec.aggregate_cid is not None and digest_of_cid(rec.aggregate_cid) == (
                agreed_digest
            )
            entry["agreed"] = rec.agreed
            claimed = rec.claim is not None and self._claims.settle(rec.claim, info.scores_digest)
            if not claimed:  # not aggregated here, or our scores lost: rebuild from the chain
                claimed = self._claims.settle_round(info, self._accepted_after_fetch)
            entry["claimed"] = claimed
            if not missed:  # the contract takes dissent for the last finalized round only
                entry["dissent"] = self._report_dissent(round_no, agreed_digest, info.scores_digest)
            weights = rec.global_model if rec.agreed else None
            if weights is None and not missed:
                try:
                    weights = self._global_model(agreed_digest)
                except (ContentError, ProtocolError) as exc:
                    entry["not_evaluated"] = f"the agreed model could not be fetched: {exc}"
        rec.global_model = None
        # Marked only now: an outage above makes the next pass do it all again (each step is
        # idempotent: claims and dissent reports check the chain first).
        self._finished.add(round_no)
        self._pending.append(self._background.submit(self._write_entry, entry, weights))

    def _write_entry(self, entry: dict[str, Any], weights: StateDict | None) -> None:
        """Evaluate the agreed model on the local test split (if any) and append the record."""
        if weights is not None:
            try:
                entry["local_test"] = self.trainer.evaluate(weights)
            except (FedchainError, ValueError, RuntimeError) as exc:
                entry["not_evaluated"] = str(exc)
                log.warning("round %d: agreed model not evaluated locally: %s", entry["round"], exc)
        self._history.append(entry)

    def _report_dissent(self, round_no: int, agg: bytes, scores: bytes) -> list[str]:
        """Members whose attestation differs from the agreed pair; reported on-chain."""
        dissenters: list[str] = []
        for att in self.ledger.attestations(self._task_id, round_no):
            if (att.aggregate_digest, att.scores_digest) == (agg, scores):
                continue
            dissenters.append(att.member)
            try:
                if not self.ledger.dissent_reported(self._task_id, round_no, att.member):
                    self.ledger.report_dissent(self._task_id, round_no, att.member)
                    log.warning(
                        "round %d: %s attested a different aggregate; dissent recorded on-chain",
                        round_no,
                        att.member,
                    )
            except ServiceUnavailableError:
                raise
            except LedgerError as exc:
                log.debug("round %d: dissent of %s not reported: %s", round_no, att.member, exc)
        return sorted(set(dissenters))

    def _raise_background_errors(self) -> None:
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for f in done:
            f.result()  # re-raises a StateError from a failed history write

    def _drain_background(self) -> None:
        for f in self._pending:
            f.result()
        self._pending.clear()

    def close(self) -> None:
        self._background.shutdown(wait=True, cancel_futures=False)
        self._fetcher.close()
