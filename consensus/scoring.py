"""Contribution scores a finalizing quorum agrees on, and their on-chain commitment.

The first rule is deliberately simple and verifiable by anyone: a member's score
for a round is the number of samples behind its accepted update, and 0 for an
update left out.  The scores are committed as a Merkle root so each member can
later claim its own score with a short proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.merkle import MerkleTree, score_leaf


@dataclass(frozen=True)
class Score:
    member: str
    score: int


def sample_scores(accepted: Sequence[tuple[str, int]]) -> list[Score]:
    """Scores for the accepted ``(member, num_samples)`` pairs, in chain order."""
    return [Score(member=m, score=n) for m, n in accepted]


def scores_tree(task_id: int, round_no: int, scores: Sequence[Score]) -> MerkleTree:
    return MerkleTree.build([score_leaf(task_id, round_no, s.member, s.score) for s in scores])
