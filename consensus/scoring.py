"""Contribution scores a finalizing quorum agrees on, and their on-chain commitment.

Scores come from :mod:`consensus.contribution` (bounded sample count when the update was
useful, else 0); every checked update gets a leaf.  The scores are committed as a Merkle root
so each member can later claim its own score with a short proof.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from consensus.merkle import MerkleTree, score_leaf


@dataclass(frozen=True)
class Score:
    member: str
    score: int


def member_scores(pairs: Sequence[tuple[str, int]]) -> list[Score]:
    """Leaves for ``(member, score)`` pairs, in chain order."""
    return [Score(member=m, score=n) for m, n in pairs]


def scores_tree(task_id: int, round_no: int, scores: Sequence[Score]) -> MerkleTree:
    return MerkleTree.build([score_leaf(task_id, round_no, s.member, s.score) for s in scores])
