"""Re-derive a task's finalized rounds from the chain and IPFS alone, as an auditor would.

For each finalized round: fetch and check every submitted update exactly as a peer does
(:func:`peer.round_updates.collect_updates`), run the agreed rule and credit
(:func:`consensus.round_decision.decide_round`) with the rule state carried in the round's
global model, and compare the content identifier of the result and the scores root with what
the round finalized with.  Nothing is written anywhere: CIDs are computed locally.

One thing the chain cannot tell: an update whose content could not be fetched while the round
was being aggregated is left out by the peers, yet may be fetchable now.  Pass such members
(from an attesting peer's ``left_out``) as ``unavailable`` to replay the round as it was.

A members-only task's content is opened with ``audit_secret`` (the federation's audit key, or a
member's key), and the recomputed aggregate is sealed again exactly as the peers sealed it
(deterministically, to the round's recipients on the chain) before its CID is compared.

A task with secure aggregation is replayed the way its peers decided it
(:func:`peer.secure_aggregation.secure_decision`): the closed set's masked updates are summed
and unmasked, with the pair-seed reveals the agreed aggregate records when expected members did
not submit, the sum is checked against the chain's sample counts, and the aggregate's content
(reveals included) is rebuilt and compared.  Such a round cannot leave an update out, so
``unavailable`` does not apply to it.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import torch

from consensus.protocol import RoundStatus
from consensus.round_decision import RoundDecision, RoundInputs, decide_round
from consensus.scoring import member_scores, scores_tree
from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import Reveal, RoundKeys
from consensus.serialization import (
    bundle_from_bytes,
    bundle_reference,
    bundle_to_bytes,
    model_bytes_limit,
)
from consensus.strategies.registry import build_rule
from consensus.task_spec import TaskSpec
from fedchain.errors import ContentError, ProtocolError
from models.tasks.learner import reference_weights
from peer.agreed_spec import read_spec
from peer.confidential.seal import content_seal, round_member_keys, sealed_fetcher
from peer.content.abc import ContentStore
from peer.content.cid import Cid
from peer.content.unixfs import file_cid
from peer.ledger.abc import FederationLedger
from peer.round_updates import collect_updates
from peer.secure_aggregation import recorded_reveals, secure_bundle, secure_decision


@dataclass(frozen=True)
class ReplayedRound:
    """One finalized round as re-derived, beside what the chain says."""

    round: int
    agreed_cid: str
    recomputed_cid: str | None
    scores_match: bool
    scores: list[tuple[str, int]] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    no_credit: dict[str, str] = field(default_factory=dict)
    problem: str = ""
    """Why the round could not be recomputed at all (e.g. a masked round's missing reveals)."""

    @property
    def ok(self) -> bool:
        return self.recomputed_cid == self.agreed_cid and self.scores_match

    def why(self) -> str:
        """What differs, in a line ("" when the round replays)."""
        if self.ok:
            return ""
        if self.recomputed_cid is None:
            reasons = "; ".join(f"{m}: {r}" for m, r in sorted(self.left_out.items()))
            return self.problem or f"nothing to aggregate ({reasons or 'no update'})"
        if self.recomputed_cid != self.agreed_cid:
            return f"the recomputed aggregate is {self.recomputed_cid}, not {self.agreed_cid}"
        return "the scores root differs from the one the round finalized with"


class Replayer:
    """Replays the rounds of one task; holds the spec, the rule and the content fetcher."""

    def __init__(
        self,
        ledger: FederationLedger,
        content: ContentStore,
        task_id: int,
        *,
        timeout: float = 60.0,
        spec: TaskSpec | None = None,
        audit_secret: bytes | None = None,
    ) -> None:
        self.ledger = ledger
        self.task_id = task_id
        self.spec = spec or read_spec(ledger, content, task_id, timeout)
        self.rule = build_rule(self.spec.aggregation)
        self.reference = reference_weights(self.spec)
        self.state_reference = self.rule.state_names(self.reference)
        self.encoding = self.spec.encoding.build()
        limit = model_bytes_limit(bundle_reference(self.reference, self.state_reference))
        self.seal = content_seal(self.spec, ledger, task_id, audit_secret)
        self.fetcher = sealed_fetcher(content, self.seal, timeout=timeout, max_bytes=limit)
        secure = self.spec.secure_aggregation
        self.fixed_point = (
            None if secure is None else FixedPoint(secure.clip_norm, secure.fraction_bits)
        )
        self._models: dict[int, tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]] = {}

    def finalized_rounds(self) -> list[int]:
        task = self.ledger.task(self.task_id)
        return [
            r
            for r in range(1, task.current_round + 1)
            if RoundStatus(self.ledger.round_info(self.task_id, r).status) is RoundStatus.FINALIZED
        ]

    def round_model(self, round_no: int) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """The global model ``round_no`` started from and the rule state it carries."""
        if round_no not in self._models:
            info = self.ledger.round_info(self.task_id, round_no)
            model_cid = self.ledger.model_cid(self.task_id, info.model_digest)
            if Cid.parse(model_cid).digest != info.model_digest:
                raise ProtocolError(
                    f"round {round_no}: model CID {model_cid} differs from its digest"
                )
            self._models = {
                round_no: bundle_from_bytes(
                    self.fetcher.fetch_verified(model_cid),
                    reference=self.reference,
                    state_reference=self.state_reference,
                )
            }
        return self._models[round_no]

    def decide(
        self, round_no: int, unavailable: Collection[str] = ()
    ) -> tuple[dict[str, str], RoundDecision | None]:
        """Left-out updates and the decision of ``round_no`` (None: nothing to aggregate)."""
        info = self.ledger.round_info(self.task_id, round_no)
        gone = {m.lower() for m in unavailable}
        subs = self.ledger.submissions(self.task_id, round_no)
        collected = collect_updates(
            [s for s in subs if s.member.lower() not in gone],
            info.model_digest,
            self.fetcher,
            self.reference,
            max_samples=self.ledger.task(self.task_id).max_samples,
            max_abs_weight=self.spec.max_abs_weight,
            encoding=self.encoding,
            global_model=lambda: self.round_model(round_no)[0],
        )
        collected.left_out.update(
            {
                s.member: "unavailable while the round was aggregated"
                for s in subs
                if s.member.lower() in gone
            }
        )
        if not collected.accepted:
            return collected.left_out, None
        previous, state = self.round_model(round_no)
        inputs = RoundInputs(self.task_id, round_no, info.model_digest, previous, state)
        decision = decide_round(collected.accepted, collected.digests, inputs, self.spec, self.rule)
        return {**collected.left_out, **decision.left_out}, decision

    def replay(self, round_no: int, unavailable: Collection[str] = ()) -> ReplayedRound:
        agreed = Cid.from_bytes(self.ledger.finalized_event(self.task_id, round_no).aggregate_cid)
        if self.fixed_point is not None:
            try:
                return self._replay_masked(round_no, agreed.text)
            except (ContentError, ProtocolError) as exc:  # e.g. its model or keys unreadable
                return ReplayedRound(round_no, agreed.text, None, False, problem=str(exc))
        left_out, decision = self.decide(round_no, unavailable)
        if decision is None:
            return ReplayedRound(round_no, agreed.text, None, False, left_out=left_out)
        data = bundle_to_bytes(decision.aggregate.weights, decision.aggregate.state)
        return self._compared(round_no, agreed.text, data, decision, left_out)

    def _replay_masked(self, round_no: int, agreed: str) -> ReplayedRound:
        """A securely aggregated round, unmasked with the reveals its agreed aggregate records."""
        assert self.fixed_point is not None
        subs = self.ledger.submissions(self.task_id, round_no)
        keys = RoundKeys(
            self.task_id,
            round_no,
            round_member_keys(
                self.ledger, self.task_id, round_no, "the round's masks cannot be recomputed"
            ),
        )
        submitted = sorted({s.member.lower() for s in subs})
        dropped = sorted(set(keys.publics) - set(submitted))
        reveals: list[Reveal] = []
        if dropped:
            try:
                recorded = recorded_reveals(
                    self.fetcher.fetch_verified(agreed), self.task_id, round_no
                )
            except (ContentError, ProtocolError) as exc:
                return ReplayedRound(
                    round_no, agreed, None, False, problem=f"no reveals to unmask it: {exc}"
                )
            seeds = {(r.revealer.lower(), r.dropped.lower()): r.seed for r in recorded}
            missing = [f"{s} with {d}" for s in submitted for d in dropped if (s, d) not in seeds]
            if missing:
                return ReplayedRound(
                    round_no,
                    agreed,
                    None,
                    False,
                    problem="its aggregate does not record the pair seeds of " + ", ".join(missing),
                )
            # exactly the seeds the peers needed: anything else recorded changes the bytes
            reveals = [Reveal(s, d, seeds[(s, d)]) for s in submitted for d in dropped]
        previous, state = self.round_model(round_no)
        decision, problems = secure_decision(
            self.fixed_point,
            keys,
            subs,
            self.fetcher,
            previous,
            state,
            reveals,
            max_samples=self.ledger.task(self.task_id).max_samples,
        )
        if decision is None:
            return ReplayedRound(round_no, agreed, None, False, left_out=problems)
        data = secure_bundle(self.task_id, round_no, decision, reveals)
        return self._compared(round_no, agreed, data, decision, {})

    def _compared(
        self,
        round_no: int,
        agreed: str,
        data: bytes,
        decision: RoundDecision,
        left_out: dict[str, str],
    ) -> ReplayedRound:
        """The recomputed aggregate ``data`` (sealed as the peers sealed it) and scores beside
        what the chain says."""
        info = self.ledger.round_info(self.task_id, round_no)
        scores = decision.scores()
        root = scores_tree(self.task_id, round_no, member_scores(scores)).root
        return ReplayedRound(
            round=round_no,
            agreed_cid=agreed,
            recomputed_cid=file_cid(self.seal.seal_aggregate(round_no, data)),
            scores_match=root == info.scores_digest,
            scores=scores,
            left_out=left_out,
            no_credit={c.member: c.reason for c in decision.credits if c.reason},
        )

    def replay_all(
        self, unavailable: Mapping[int, Collection[str]] | None = None
    ) -> list[ReplayedRound]:
        """Every finalized round; ``unavailable``: per round, members left out as unfetchable."""
        gone = unavailable or {}
        return [self.replay(r, gone.get(r, ())) for r in self.finalized_rounds()]
