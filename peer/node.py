"""The peer's round loop: read the chain, decide, act, repeat.

The chain and the content store are the truth.  Each :meth:`PeerNode.step`
re-reads the task and round from the ledger, asks
:func:`consensus.protocol.next_action` what to do, and does exactly that one
step, so a peer that restarts (or misses every gossip message) simply picks up
where the chain says the federation is.  :meth:`PeerNode.run` is the real peer's
loop of steps; the simulator (:mod:`fedchain.simulator`) drives many nodes'
steps itself, on a virtual clock.

The node is typed against interfaces only: :class:`FederationLedger`,
:class:`ContentStore`, :class:`Gossip`, a :class:`~peer.clock.Clock`, an
executor for work beside the loop, and a learner (train / evaluate on local
data).  Its working state of each round sits in :mod:`peer.round_state`; when a
round ends it publishes one :class:`~peer.records.RoundRecord` to its observers
(``history.jsonl`` is written by one of them).

Nothing another member sends can stop this loop: an update that cannot be
fetched or decoded is left out with its reason; an agreed model that cannot be
fetched, trained or evaluated is recorded as such and the peer keeps following
the chain.  An outage of the chain RPC or the own Kubo is ridden out
(:mod:`peer.resilience`); only an outage longer than ``protocol.max_outage`` or a
removal from the federation ends the peer.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import TYPE_CHECKING, Protocol

import torch

from consensus.checks import non_finite
from consensus.protocol import (
    Action,
    RoundStatus,
    RoundView,
    next_action,
    round_ended,
    round_need,
)
from consensus.round_decision import RoundDecision, RoundInputs, decide_round
from consensus.secagg.rounds import Reveal
from consensus.serialization import (
    bundle_from_bytes,
    bundle_reference,
    bundle_to_bytes,
    model_bytes_limit,
)
from consensus.strategies.registry import build_rule
from consensus.task_spec import TaskSpec
from fedchain.errors import (
    ContentError,
    FedchainError,
    LedgerError,
    ProtocolError,
    ServiceUnavailableError,
)
from peer.announcements import (
    Domain,
    RevealAnnouncement,
    UpdateAnnouncement,
    sign_reveal,
    sign_update,
)
from peer.claims import ClaimBook, scores_root_and_claim
from peer.clock import Clock, SystemClock
from peer.confidential.envelope import NotARecipient
from peer.confidential.seal import content_seal, sealed_fetcher
from peer.config import PeerConfig
from peer.content.abc import ContentStore
from peer.content.cid import Cid
from peer.gossip.abc import Gossip, GossipMessage
from peer.identity import Identity
from peer.ledger.abc import FederationLedger
from peer.ledger.errors import AlreadyAttested, NotEligible, NotMember
from peer.ledger.types import RoundInfo, Submission
from peer.records import GossipTotals, History, HistoryWriter, RoundObserver, RoundRecord
from peer.residual import ResidualStore
from peer.resilience import OutageGuard
from peer.round_state import RoundBook, RoundState, StateDict
from peer.round_updates import RoundUpdates, collect_updates
from peer.secure_aggregation import RevealsPending, SecureRounds, capped_scores

if TYPE_CHECKING:
    from models.privacy import PrivacyBudget

log = logging.getLogger("fedchain.peer.node")

SWARM_CHECK_SECONDS = 15.0
"""How often the peer checks that its own Kubo still has swarm peers."""

MAX_MESSAGES_PER_STEP = 256
"""Gossip messages handled per step at most, so a flood cannot starve the round."""


class StepOutcome(Enum):
    """What one :meth:`PeerNode.step` did."""

    ACTED = "acted"
    """Changed something (a transaction, a training, a decision): step again at once."""
    WAITING = "waiting"
    """Nothing to do until time passes or another member acts."""
    DONE = "done"
    """The task is complete."""


class LocalLearner(Protocol):
    """The institution's local step: train from the global model, evaluate an agreed one."""

    @property
    def num_samples(self) -> int: ...

    def reference_weights(self) -> StateDict: ...

    def train(self, global_weights: Mapping[str, torch.Tensor], round_no: int) -> StateDict: ...

    def evaluate(self, weights: Mapping[str, torch.Tensor]) -> dict[str, float]: ...

    def plan_privacy(self, planned_rounds: int) -> PrivacyBudget | None:
        """The DP plan over a task of ``planned_rounds`` rounds (None: the spec has no DP)."""
        ...


class MemberRemoved(LedgerError):
    """This member was removed from the federation by governance; its node stops."""


@dataclass
class PeerNode:
    cfg: PeerConfig
    identity: Identity
    ledger: FederationLedger
    content: ContentStore
    gossip: Gossip | None
    spec: TaskSpec
    learner: LocalLearner
    clock: Clock = field(default_factory=SystemClock)
    executor: Executor | None = None
    """Runs evaluation and record writing beside the loop (default: one worker thread);
    the simulator passes an inline executor."""
    fetch_executor: Executor | None = None
    """Runs content fetches (default: a small thread pool of the fetcher's own)."""
    observers: list[RoundObserver] = field(default_factory=list)
    """Told of each ended round after the ``history.jsonl`` writer."""
    encryption_secret: bytes | None = None
    """This member's X25519 secret key: opens a members-only task's content."""

    def __post_init__(self) -> None:
        self._reference = self.learner.reference_weights()
        self._rule = build_rule(self.spec.aggregation)
        self._state_reference = self._rule.state_names(self._reference)
        self._encoding = self.spec.encoding.build()
        self._update_limit = self._encoding.max_bytes(self._reference)
        self._secure: SecureRounds | None = None
        if self.spec.secure_aggregation is not None:  # masked updates (peer/secure_aggregation.py)
            self._secure = SecureRounds(
                self.spec.secure_aggregation,
                self.ledger,
                self.cfg.chain.task_id,
                self.identity.address.lower(),
                self.encryption_secret,
                self.cfg.state_dir,
                publish=self._publish_reveals,
                clock=self.clock.monotonic,
            )
            self._update_limit = self._secure.update_bytes(self._reference)
        # What a top-k encoding dropped, sent in later rounds; private to this peer.
        self._residuals = (
            ResidualStore(self.cfg.state_dir, str(self._encoding))
            if self._encoding.codec.error_feedback
            else None
        )
        self._seal = content_seal(
            self.spec, self.ledger, self.cfg.chain.task_id, self.encryption_secret
        )
        self._fetcher = sealed_fetcher(
            self.content,
            self._seal,
            timeout=self.cfg.ipfs.fetch_timeout,
            # the largest content is an aggregate with the rule's state
            max_bytes=max(
                model_bytes_limit(bundle_reference(self._reference, self._state_reference)),
                self._update_limit,
            ),
            executor=self.fetch_executor,
        )
        self._domain = Domain(chain_id=self.ledger.chain_id, contract=self.ledger.address)
        self._task_id = self.cfg.chain.task_id
        self._me = self.identity.address
        self._history = History(self.cfg.state_dir)
        self._observers: list[RoundObserver] = [HistoryWriter(self._history), *self.observers]
        self._claims = ClaimBook(self.ledger, self._task_id, self._me)
        self._guard = OutageGuard(
            max_outage=self.cfg.protocol.max_outage,
            clock=self.clock.monotonic,
            sleep=self.clock.sleep,
        )
        self._owns_executor = self.executor is None
        self._background: Executor = self.executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="records"
        )
        self._pending: list[Future[None]] = []
        self._rounds = RoundBook()
        self._model_cids: dict[bytes, str] = {}
        self._caught_up = False
        self._next_swarm_check = 0.0
        self._max_samples = 0
        self._planned_rounds = 0
        self._released: int | None = None
        """Updates this member has released in the task (its submissions on the chain)."""

    # -- the loop ---------------------------------------------------------------

    def run(self) -> int:
        """Step until the task is complete, riding out outages; 0 when done."""
        log.info("peer %s (%s) joined task %d", self.cfg.institution.name, self._me, self._task_id)
        while True:
            try:
                outcome = self.step()
                self._guard.succeeded()
            except ServiceUnavailableError as exc:
                self._guard.failed(exc)
                self._reconnect_swarm()
                continue
            if outcome is StepOutcome.DONE:
                return 0
            if outcome is StepOutcome.WAITING:
                self._wait(self.cfg.protocol.poll_interval)

    def step(self) -> StepOutcome:
        """One read-decide-act pass; never blocks on time (waiting is the driver's job).

        ServiceUnavailableError (chain or own content store down) propagates to the driver;
        MemberRemoved ends the node.
        """
        self._raise_background_errors()
        if not self._caught_up:
            self._catch_up_on_start()
            self._caught_up = True
        self._handle_messages(timeout=0.0)
        self._check_swarm()
        task = self.ledger.task(self._task_id)
        self._max_samples = task.max_samples
        self._planned_rounds = task.num_rounds
        round_no = task.current_round
        for ended in self._rounds.ended_since(round_no):
            self._finish_round(ended)  # an outage here leaves the book on the old round
        self._rounds.enter(round_no, self.clock.monotonic())
        info = self.ledger.round_info(self._task_id, round_no)
        state = self._rounds[round_no]
        if self._secure is not None:
            self._secure.resend_reveals(round_no, RoundStatus(info.status) is RoundStatus.CLOSED)
        view = RoundView(
            status=RoundStatus(info.status),
            now=int(self.clock.now()),
            submit_deadline=info.submit_deadline,
            attest_deadline=info.attest_deadline,
            submissions=info.submissions,
            quorum=round_need(info.need, task.quorum, info.eligible),
            eligible=not state.ineligible,
            submitted=self._has_submitted(state),
            attested=state.attested,
            task_complete=task.completed,
        )
        action = next_action(view)
        if action is Action.DONE:
            self._finish_round(round_no)
            self._drain_background()  # every record out (and any failure to write one raised)
            log.info("task %d complete (round %d)", self._task_id, task.last_finalized_round)
            return StepOutcome.DONE
        if action is Action.WAIT:
            return StepOutcome.WAITING
        try:
            acted = self._do(action, state, info)
        except NotMember:
            raise MemberRemoved(
                f"{self._me} is no longer a member of the federation (removed by governance); "
                "this peer stops"
            ) from None
        except NotEligible:
            log.info("round %d: admitted after it opened; joining the next one", round_no)
            state.ineligible = True
            return StepOutcome.ACTED
        except AlreadyAttested:
            state.attested = True
            return StepOutcome.ACTED
        except ServiceUnavailableError:
            raise
        except LedgerError as exc:
            # Another peer may have moved the round on first; the next pass re-reads the chain.
            log.info("round %d: %s refused: %s", round_no, action.value, exc)
            return StepOutcome.WAITING
        return StepOutcome.ACTED if acted else StepOutcome.WAITING

    def _do(self, action: Action, state: RoundState, info: RoundInfo) -> bool:
        """Carry out ``action``; False when nothing could be done yet (try again later)."""
        if action is Action.TRAIN_AND_SUBMIT:
            return self._train_and_submit(state, info.model_digest)
        if action is Action.CLOSE_UPDATES:
            self.ledger.close_updates(self._task_id, state.round)
            log.info("round %d: closed the update set after the deadline", state.round)
        elif action is Action.AGGREGATE_AND_ATTEST:
            return self._aggregate_and_attest(state, info.model_digest)
        elif action is Action.FAIL_ROUND:
            self.ledger.fail_round(self._task_id, state.round)
            log.warning("round %d: marked failed (no quorum before its deadline)", state.round)
        return True

    # -- steps ----------------------------------------------------------------

    def _has_submitted(self, state: RoundState) -> bool:
        if state.submitted:
            return True
        digest, _ = self.ledger.submission_of(self._task_id, state.round, self._me)
        return digest != bytes(32)

    def initial_model(self) -> StateDict:
        """The task's round-1 global model, as the chain names it (fetched and verified)."""
        return self._global_model(self.ledger.round_info(self._task_id, 1).model_digest)

    def _global_model(self, model_digest: bytes) -> StateDict:
        return self._global_content(model_digest)[0]

    def _global_content(self, model_digest: bytes) -> tuple[StateDict, StateDict]:
        """The agreed model with this digest and the rule state it carries (maybe empty)."""
        cid = self._model_cids.get(model_digest) or self.ledger.model_cid(
            self._task_id, model_digest
        )
        if Cid.parse(cid).digest != model_digest:
            raise ProtocolError(f"global model CID {cid} does not match the on-chain digest")
        data = self._fetcher.fetch_verified(cid)
        return bundle_from_bytes(
            data, reference=self._reference, state_reference=self._state_reference
        )

    def _train_and_submit(self, state: RoundState, model_digest: bytes) -> bool:
        round_no = state.round
        t0 = time.perf_counter()
        try:
            global_weights = self._global_model(model_digest)
        except ProtocolError as exc:
            self._skip_training(state, f"the agreed global model is unusable: {exc}")
            return True
        except ContentError as exc:
            # Quorum members pin the agreed model: keep trying until the deadline.
            log.warning("round %d: global model not fetched yet: %s", round_no, exc)
            return False
        t1 = time.perf_counter()
        budget = self.learner.plan_privacy(self._planned_rounds)
        if budget is not None and not self._within_budget(state, budget):
            return True
        try:
            weights = self.learner.train(global_weights, round_no)
        except (FedchainError, ValueError, RuntimeError) as exc:
            self._skip_training(state, f"local training failed on the agreed model: {exc}")
            return True
        bad = non_finite(weights)
        if bad:
            self._skip_training(
                state,
                f"training from the agreed model gave non-finite weights ({', '.join(bad)})",
            )
            return True
        t2 = time.perf_counter()
        feedback = self._residuals.before(round_no) if self._residuals is not None else None
        n = min(self.learner.num_samples, self._max_samples or self.learner.num_samples)
        try:  # between the trainer and the content store
            if self._secure is not None:
                data = self._secure.mask(round_no, weights, global_weights, n)
            else:
                data = self._encoding.encode(weights, global_weights, feedback)
            sealed = self._seal.seal_update(round_no, data)
        except FedchainError as exc:
            self._skip_training(state, f"the update could not be encoded ({self._encoding}): {exc}")
            return True
        del weights, global_weights
        t_encoded = time.perf_counter()
        cid = self.content.add(sealed)
        self._fetcher.remember(cid, sealed)
        t_added = time.perf_counter()
        released = self._released_updates() + 1 if budget is not None else 0
        epsilon = budget.epsilon(released) if budget is not None else None
        self.ledger.submit_update(
            self._task_id,
            round_no,
            Cid.parse(cid).binary,
            n,
            math.ceil(epsilon * 1000) if epsilon is not None else 0,
        )
        if self._residuals is not None and feedback is not None:
            self._residuals.after(round_no, feedback)  # only once the update is on the chain
        t3 = time.perf_counter()
        if epsilon is not None:
            self._released, state.epsilon = released, epsilon
        state.update_cid = cid
        state.seconds.update(
            fetch_model=t1 - t0,
            train=t2 - t1,
            encode=t_encoded - t2,
            add=t_added - t_encoded,
            submit=t3 - t_added,
        )
        state.acted_at = self.clock.monotonic()
        state.update_bytes = len(data)
        self._announce(round_no, cid, n)
        log.info("round %d: trained on %d samples, submitted %s", round_no, n, cid)
        return True

    def _released_updates(self) -> int:
        """Updates this member has released in the task (read from the chain once, then
        counted), so a restarted peer knows what it already spent."""
        if self._released is None:
            self._released = self.ledger.privacy_spent_of(self._task_id, self._me)[0]
        return self._released

    def _within_budget(self, state: RoundState, budget: PrivacyBudget) -> bool:
        """Whether one more update stays within the agreed epsilon; if not, say so and skip."""
        released = self._released_updates()
        if budget.allows(released + 1):
            return True
        target = budget.settings.target_epsilon
        state.not_trained = (
            f"privacy budget spent: update {released + 1} would bring epsilon to "
            f"{budget.epsilon(released + 1):.3g}, over the agreed {target:g} "
            f"(spent {budget.epsilon(released):.3g}); no more updates from this institution "
            "in this task"
        )
        log.warning("round %d: not training: %s", state.round, state.not_trained)
        return False

    def _skip_training(self, state: RoundState, reason: str) -> None:
        state.not_trained = reason
        log.error("round %d: not training this round: %s", state.round, reason)

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
        self._gossip_out(round_no, ann.to_bytes())

    def _publish_reveals(self, round_no: int, reveals: list[Reveal]) -> None:
        """Secure aggregation: this submitter's seeds with the members that did not submit."""
        if self.gossip is None:
            log.error(
                "round %d: gossip is off (gossip.enabled): this member's reveals cannot reach "
                "the others, so the round cannot be unmasked",
                round_no,
            )
            return
        ann = sign_reveal(
            self.identity.account,
            self._domain,
            task_id=self._task_id,
            round_no=round_no,
            reveals=reveals,
        )
        self._gossip_out(round_no, ann.to_bytes())

    def _gossip_out(self, round_no: int, data: bytes) -> None:
        assert self.gossip is not None
        try:
            self.gossip.publish(data)
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
            encoding=self._encoding,
            global_model=lambda: self._global_model(model_digest),
        )
        self._require_own_kubo_healthy(round_no, collected.unavailable)
        return collected

    def _decide(
        self,
        round_no: int,
        submissions: list[Submission],
        model_digest: bytes,
        seconds: dict[str, float] | None = None,
    ) -> tuple[RoundUpdates, RoundDecision | None]:
        """The round's checked updates and, when any is left, the agreed aggregate and credits
        (the time fetching and checking the updates took goes to ``seconds["fetch_updates"]``)."""
        t0 = time.perf_counter()
        if self._secure is not None:
            previous, rule_state = self._global_content(model_digest)
            decision, problems = self._secure.decide(
                round_no,
                submissions,
                self._fetcher,
                previous,
                rule_state,
                max_samples=self._ledger_cap(),
            )
            if seconds is not None:  # fetching, unmasking and checking the sum
                seconds["fetch_updates"] = time.perf_counter() - t0
            return RoundUpdates(left_out=problems), decision
        collected = self._collect(round_no, submissions, model_digest)
        if seconds is not None:
            seconds["fetch_updates"] = time.perf_counter() - t0
        if not collected.accepted:
            return collected, None
        previous, rule_state = self._global_content(model_digest)
        inputs = RoundInputs(self._task_id, round_no, model_digest, previous, rule_state)
        try:
            decision = decide_round(
                collected.accepted, collected.digests, inputs, self.spec, self._rule
            )
        except ProtocolError as exc:  # e.g. Krum with fewer updates than it needs
            log.error("round %d: the aggregation rule refused the round: %s", round_no, exc)
            return collected, None
        return collected, decision

    def _scores_after_fetch(
        self, round_no: int, submissions: list[Submission], model_digest: bytes
    ) -> list[tuple[str, int]]:
        if self._secure is not None:  # credit by sample count: no update needs fetching
            return capped_scores(submissions, self._ledger_cap())
        decision = self._decide(round_no, submissions, model_digest)[1]
        return [] if decision is None else decision.scores()

    def _ledger_cap(self) -> int:
        if not self._max_samples:
            self._max_samples = self.ledger.task(self._task_id).max_samples
        return self._max_samples

    def _aggregate_and_attest(self, state: RoundState, model_digest: bytes) -> bool:
        """False while a securely aggregated round waits for reveals (try again later)."""
        round_no = state.round
        if state.acted_at is not None and "wait_close" not in state.seconds:
            state.seconds["wait_close"] = self.clock.monotonic() - state.acted_at
        t0 = time.perf_counter()
        submissions = self.ledger.submissions(self._task_id, round_no)
        try:
            collected, decision = self._decide(round_no, submissions, model_digest, state.seconds)
        except NotARecipient as exc:  # admitted after the model's round opened: sit this out
            log.warning("round %d: not aggregating: %s", round_no, exc)
            state.attested = True
            return True
        except RevealsPending as exc:
            if exc.waiting != state.left_out:
                for member, reason in exc.waiting.items():
                    log.warning(
                        "round %d: waiting for the reveal of %s: %s", round_no, member, reason
                    )
            state.left_out = exc.waiting
            return False
        state.left_out = {**collected.left_out, **(decision.left_out if decision else {})}
        for member, reason in state.left_out.items():
            log.warning("round %d: left out the update of %s: %s", round_no, member, reason)
        if decision is None:
            log.warning(
                "round %d: no valid update to aggregate; waiting for the deadline", round_no
            )
            state.attested = True
            state.acted_at = self.clock.monotonic()
            return True
        aggregate = decision.aggregate.weights
        t_add = time.perf_counter()  # sealing (members-only tasks) counts as adding
        agg_bytes = self._seal.seal_aggregate(
            round_no,
            bundle_to_bytes(aggregate, decision.aggregate.state)
            if self._secure is None
            else self._secure.aggregate_bytes(round_no, decision),  # with the reveals used
        )
        agg_cid = self.content.add(agg_bytes)
        t_added = time.perf_counter()
        root, claim = scores_root_and_claim(self._task_id, round_no, self._me, decision.scores())
        state.no_credit = {c.member: c.reason for c in decision.credits if c.reason}
        for member, reason in state.no_credit.items():
            log.info("round %d: no credit for %s: %s", round_no, member, reason)
        t1 = time.perf_counter()
        state.attested = True
        self.ledger.attest_aggregate(self._task_id, round_no, Cid.parse(agg_cid).binary, root)
        t2 = time.perf_counter()
        state.aggregate_cid = agg_cid
        state.accepted = list(decision.aggregate.accepted)
        state.scores_root = "0x" + root.hex()
        state.claim = claim
        fetched = state.seconds.get("fetch_updates", 0.0)
        state.seconds.update(
            aggregate=t_add - t0 - fetched + (t1 - t_added),
            add_aggregate=t_added - t_add,
            attest=t2 - t1,
        )
        state.acted_at = self.clock.monotonic()
        state.aggregate = aggregate
        log.info(
            "round %d: aggregated %d updates (%d left out) into %s and attested",
            round_no,
            len(decision.aggregate.accepted),
            len(state.left_out),
            agg_cid,
        )
        # Only the aggregate (the next round's likely model) stays cached.
        self._fetcher.clear()
        self._fetcher.remember(agg_cid, agg_bytes)
        self._model_cids = {Cid.parse(agg_cid).digest: agg_cid}
        return True

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
        now = self.clock.monotonic()
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

    def _wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` for time to pass, handling gossip as it arrives."""
        if self.gossip is None:
            self.clock.sleep(timeout)
            return
        self._handle_messages(timeout)

    def _handle_messages(self, timeout: float) -> None:
        """Prefetch what valid announcements name; gossip validated them before delivery.

        With ``timeout`` 0 only what already arrived is handled (at most a bounded number).
        A wait ends early at an announcement: another member just submitted, so the update
        set may be complete; the loop re-reads the chain at once instead of a poll later.
        """
        if self.gossip is None:
            return
        deadline = self.clock.monotonic() + timeout
        for _ in range(MAX_MESSAGES_PER_STEP):
            left = max(0.0, deadline - self.clock.monotonic())
            msg = self.gossip.receive(timeout=left)
            if msg is None:
                return
            self._on_message(msg)
            if timeout > 0 and (
                isinstance(msg.validated, (UpdateAnnouncement, RevealAnnouncement))
                or deadline - self.clock.monotonic() <= 0
            ):
                return

    def _on_message(self, msg: GossipMessage) -> None:
        if isinstance(msg.validated, UpdateAnnouncement):
            self._fetcher.prefetch(msg.validated.cid, max_bytes=self._update_limit)
        elif isinstance(msg.validated, RevealAnnouncement) and self._secure is not None:
            self._secure.receive_reveals(msg.validated.round, msg.validated.reveals())

    # -- records, claims, dissent -------------------------------------------------

    def _catch_up_on_start(self) -> None:
        """Claims and history lines for every round that ended while this peer was away."""
        task = self.ledger.task(self._task_id)
        self._max_samples = task.max_samples
        self._planned_rounds = task.num_rounds
        made = self._claims.rebuild(self._scores_after_fetch)
        if made:
            log.info("claimed contributions of %d earlier rounds", made)
        written = self._history.rounds()
        last_ended = task.current_round if task.completed else task.current_round - 1
        for round_no in range(1, last_ended + 1):
            if round_no not in written:
                self._finish_round(round_no, missed=True)

    def _gossip_totals(self) -> GossipTotals | None:
        if self.gossip is None:
            return None
        stats = self.gossip.stats()  # totals since start: a flood shows up in the record
        return GossipTotals(
            accepted=stats.accepted,
            rejected=dict(stats.rejected),
            inbox_dropped=stats.inbox_dropped,
            outbound_dropped=stats.outbound_dropped,
        )

    def _finish_round(self, round_no: int, *, missed: bool = False) -> None:
        """Record what happened in ``round_no`` once it has ended, claim, report dissent."""
        if self._rounds.is_finished(round_no):
            return
        info = self.ledger.round_info(self._task_id, round_no)
        status = RoundStatus(info.status)
        if not round_ended(status):
            return
        state = self._rounds[round_no]
        seconds = dict(state.seconds)
        if state.acted_at is not None:
            waited = "wait_final" if "wait_close" in seconds else "wait_close"
            seconds[waited] = self.clock.monotonic() - state.acted_at
        if state.started is not None:
            seconds["round"] = self.clock.monotonic() - state.started
            seconds["overhead"] = seconds["round"] - seconds.get("train", 0.0)
        record = RoundRecord(
            round=round_no,
            status=status.name.lower(),
            update_cid=state.update_cid,
            update_bytes=state.update_bytes,
            aggregate_cid=state.aggregate_cid,
            accepted=tuple(state.accepted),
            left_out=dict(state.left_out),
            no_credit=dict(state.no_credit),
            scores_root=state.scores_root,
            score=state.claim.score if state.claim is not None else None,
            seconds=seconds,
            not_trained=state.not_trained,
            epsilon=state.epsilon,
            missed=missed,
            gossip=self._gossip_totals(),
        )
        weights: StateDict | None = None
        if status is RoundStatus.FINALIZED:
            agreed_digest = info.aggregate_digest
            agreed = state.aggregate_cid is not None and (
                Cid.parse(state.aggregate_cid).digest == agreed_digest
            )
            claimed = state.claim is not None and self._claims.settle(
                state.claim, info.scores_digest
            )
            if not claimed:  # not aggregated here, or our scores lost: rebuild from the chain
                claimed = self._claims.settle_round(info, self._scores_after_fetch)
            dissent: list[str] = []
            if not missed:  # the contract takes dissent for the last finalized round only
                dissent = self._report_dissent(round_no, agreed_digest, info.scores_digest)
            record = replace(record, agreed=agreed, claimed=claimed, dissent=tuple(dissent))
            weights = state.aggregate if agreed else None
            if weights is None and not missed:
                try:
                    weights = self._global_model(agreed_digest)
                except (ContentError, ProtocolError) as exc:
                    record = replace(
                        record, not_evaluated=f"the agreed model could not be fetched: {exc}"
                    )
        # Marked only now: an outage above makes the next pass do it all again (each step is
        # idempotent: claims and dissent reports check the chain first).
        self._rounds.finish(round_no)
        self._pending.append(self._background.submit(self._publish, record, weights))

    def _publish(self, record: RoundRecord, weights: StateDict | None) -> None:
        """Evaluate the agreed model on the local test split (if any), then tell the observers."""
        if weights is not None:
            try:
                record = replace(record, local_test=self.learner.evaluate(weights))
            except (FedchainError, ValueError, RuntimeError) as exc:
                record = replace(record, not_evaluated=str(exc))
                log.warning("round %d: agreed model not evaluated locally: %s", record.round, exc)
        for observer in self._observers:
            observer.round_finished(record)

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
        """Let the pending records be written and release the node's threads."""
        if self._owns_executor:
            self._background.shutdown(wait=True, cancel_futures=False)
        self._fetcher.close()
