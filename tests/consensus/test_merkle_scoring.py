from __future__ import annotations

import pytest
from eth_account import Account

from consensus.merkle import MerkleTree, score_leaf, verify
from consensus.scoring import member_scores, scores_tree


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 13])
def test_every_leaf_proves_and_tampering_fails(n: int) -> None:
    members = [Account.create().address for _ in range(n)]
    scores = member_scores([(m, 100 + i) for i, m in enumerate(members)])
    tree = scores_tree(7, 3, scores)
    for i, s in enumerate(scores):
        leaf = score_leaf(7, 3, s.member, s.score)
        assert verify(leaf, tree.proof(i), tree.root)
        assert not verify(score_leaf(7, 3, s.member, s.score + 1), tree.proof(i), tree.root)
        assert not verify(score_leaf(7, 4, s.member, s.score), tree.proof(i), tree.root)
        assert not verify(score_leaf(8, 3, s.member, s.score), tree.proof(i), tree.root)


def test_empty_tree_refused() -> None:
    with pytest.raises(ValueError):
        MerkleTree.build([])
