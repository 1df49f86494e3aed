"""Contribution claims that survive a crash: claimed once a round finalizes, rebuilt from the chain.

A claim needs this member's score and a Merkle proof under the round's agreed
scores root.  The live round loop knows both right after attesting; a restarted
peer (or ``fedchain claim``) does not, so it recomputes them from the chain: first
assuming every update the chain alone accepts earned its bounded sample count
(cheap, and right whenever every update was useful), and only when that does not
reproduce the agreed root, from the fetched and checked updates, aggregated and
credited exactly as a live peer does (:func:`consensus.round_decision.decide_round`).
Nothing is kept only in memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from consensus.checks import SubmittedDigest, chain_verdicts
from consensus.protocol import RoundStatus
from consensus.scoring import Score, member_scores, scores_tree
from peer.ledger.abc import FederationLedger
from peer.ledger.errors import AlreadyClaimed
from peer.ledger.events import UpdateSubmitted
from peer.ledger.types import RoundInfo, Submission

log = logging.getLogger("fedchain.peer.claims")

ScoresFn = Callable[[int, list[Submission], bytes], Sequence[tuple[str, int]]]
"""(round, submissions, model digest) -> the round's (member, score) leaves, after fetching."""


@dataclass(frozen=True)
class Claim:
    round: int
    score: int
    root: bytes
    proof: list[bytes]


def scores_root_and_claim(
    task_id: int, round_no: int, member: str, scores: Sequence[tuple[str, int]]
) -> tuple[bytes, Claim | None]:
    """The scores root of ``scores`` and this member's claim under it (None: no leaf)."""
    leaves: list[Score] = member_scores(list(scores))
    tree = scores_tree(task_id, round_no, leaves)
    for i, s in enumerate(leaves):
        if s.member.lower() == member.lower():
            return tree.root, Claim(round_no, s.score, tree.root, tree.proof(i))
    return tree.root, None


def claim_for(
    task_id: int, round_no: int, member: str, scores: Sequence[tuple[str, int]]
) -> Claim | None:
    """This member's claim under ``scores``, or None if it earned nothing."""
    return scores_root_and_claim(task_id, round_no, member, scores)[1]


class ClaimBook:
    """Claims of one member in one task."""

    def __init__(self, ledger: FederationLedger, task_id: int, member: str) -> None:
        self._ledger = ledger
        self._task_id = task_id
        self._member = member
        self.claimed: dict[int, int] = {}

    def settle(self, claim: Claim, agreed_root: bytes) -> bool:
        """Claim ``claim`` if ``agreed_root`` (the finalized round's) is its root.

        True when the round is settled (claimed now or before, or this member earned 0 under the
        agreed scores: nothing to claim); False when our scores were not agreed.
        """
        if agreed_root != claim.root:
            log.info("round %d: the agreed scores differ from ours; nothing to claim", claim.round)
            return False
        if claim.score == 0:
            return True
        if self._ledger.has_claimed(self._task_id, claim.round, self._member):
            return True
        try:
            self._ledger.claim_contribution(self._task_id, claim.round, claim.score, claim.proof)
        except AlreadyClaimed:
            return True
        self.claimed[claim.round] = claim.score
        log.info("round %d: claimed contribution %d", claim.round, claim.score)
        return True

    def rebuild(self, scores_after_fetch: ScoresFn) -> int:
        """Claim every finalized round this member submitted to and has not claimed; count them."""
        before = len(self.claimed)
        mine = self._ledger.events(UpdateSubmitted, self._task_id, None, self._member)
        for round_no in sorted({e.round for e in mine}):
            info = self._ledger.round_info(self._task_id, round_no)
            if info.status is RoundStatus.FINALIZED:
                self.settle_round(info, scores_after_fetch)
        return len(self.claimed) - before

    def settle_round(self, info: RoundInfo, scores_after_fetch: ScoresFn) -> bool:
        """Claim a finalized round from the chain's record (one this peer did not aggregate).

        True when the round is claimed, now or before.
        """
        round_no = info.round
        if self._ledger.has_claimed(self._task_id, round_no, self._member):
            return True
        subs = self._ledger.submissions(self._task_id, round_no)
        if not any(s.member.lower() == self._member.lower() for s in subs):
            return False
        claim = self._from_chain(round_no, subs, info.model_digest)
        if claim is None or claim.root != info.scores_digest:
            scores = scores_after_fetch(round_no, subs, info.model_digest)
            claim = claim_for(self._task_id, round_no, self._member, scores)
        return claim is not None and self.settle(claim, info.scores_digest)

    def _from_chain(
        self, round_no: int, subs: list[Submission], model_digest: bytes
    ) -> Claim | None:
        cap = self._ledger.task(self._task_id).max_samples
        left_out = chain_verdicts([SubmittedDigest(s.member, s.digest) for s in subs], model_digest)
        accepted = [(s.member, min(s.num_samples, cap)) for s in subs if s.member not in left_out]
        return claim_for(self._task_id, round_no, self._member, accepted)
