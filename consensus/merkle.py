"""Merkle tree over contribution scores, matching the contract's verifier.

Leaves are double-hashed ``keccak(keccak(abi.encode(task, round, member, score)))``
so a leaf can never be confused with an inner node; pairs are hashed in sorted
order so a proof needs no left/right flags.  An odd node is promoted unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_abi.abi import encode as abi_encode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak


def score_leaf(task_id: int, round_no: int, member: str, score: int) -> bytes:
    inner = keccak(
        abi_encode(
            ["uint256", "uint32", "address", "uint256"],
            [task_id, round_no, to_checksum_address(member), score],
        )
    )
    return keccak(inner)


def _parent(a: bytes, b: bytes) -> bytes:
    return keccak(a + b) if a <= b else keccak(b + a)


@dataclass(frozen=True)
class MerkleTree:
    """All levels of the tree, leaves first, so proofs can be read off directly."""

    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def build(cls, leaves: Sequence[bytes]) -> MerkleTree:
        if not leaves:
            raise ValueError("a Merkle tree needs at least one leaf")
        levels = [tuple(leaves)]
        while len(levels[-1]) > 1:
            cur = levels[-1]
            nxt = [_parent(cur[i], cur[i + 1]) for i in range(0, len(cur) - 1, 2)]
            if len(cur) % 2:
                nxt.append(cur[-1])
            levels.append(tuple(nxt))
        return cls(tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def proof(self, index: int) -> list[bytes]:
        path: list[bytes] = []
        for level in self.levels[:-1]:
            sibling = index ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            index //= 2
        return path


def verify(leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    node = leaf
    for sibling in proof:
        node = _parent(node, sibling)
    return node == root
