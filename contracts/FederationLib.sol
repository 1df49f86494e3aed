// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title CidBytes
/// @notice Reads the sha2-256 digest out of a binary CIDv1, the only CID form fedchain names content by.
/// @dev A CIDv1 with a single-byte codec and a sha2-256 multihash is exactly 36 bytes:
///      0x01 (version), codec (0x55 raw or 0x70 dag-pb), 0x12 (sha2-256), 0x20 (32 bytes), digest.
///      Every codec and hash code fedchain accepts fits a one-byte varint, so the check is a single
///      comparison of the first four bytes.
library CidBytes {
    uint256 internal constant CID_LENGTH = 36;
    uint256 internal constant RAW_PREFIX = 0x01551220;
    uint256 internal constant DAG_PB_PREFIX = 0x01701220;

    /// @return ok whether `cid` is a CIDv1 (raw or dag-pb) naming a sha2-256 digest
    /// @return digest the 32-byte sha2-256 digest inside it (zero when `ok` is false)
    function digestOf(bytes calldata cid) internal pure returns (bool ok, bytes32 digest) {
        if (cid.length != CID_LENGTH) return (false, bytes32(0));
        uint256 prefix;
        assembly {
            prefix := shr(224, calldataload(cid.offset))
            digest := calldataload(add(cid.offset, 4))
        }
        if (prefix != RAW_PREFIX && prefix != DAG_PB_PREFIX) return (false, bytes32(0));
        return (true, digest);
    }
}

/// @title ScoreProof
/// @notice Membership proofs for the per-round contribution scores a finalizing quorum agreed on.
/// @dev Sorted-pair keccak256 tree: a parent is keccak256(min(a, b) ++ max(a, b)), so a proof is
///      the list of siblings from leaf to root with no left/right flags.  Leaves are hashed twice
///      (see `leaf`) so that no leaf can be mistaken for an inner node of 64 bytes.
library ScoreProof {
    /// @return the leaf for `member` having earned `score` in round `round` of task `taskId`
    function leaf(uint256 taskId, uint32 round, address member, uint256 score) internal pure returns (bytes32) {
        return keccak256(bytes.concat(keccak256(abi.encode(taskId, round, member, score))));
    }

    /// @return true when `proof` links `leafHash` up to `root`
    function verify(bytes32[] calldata proof, bytes32 root, bytes32 leafHash) internal pure returns (bool) {
        bytes32 node = leafHash;
        uint256 n = proof.length;
        for (uint256 i = 0; i < n; ++i) {
            bytes32 sibling = proof[i];
            node = node <= sibling ? _hashPair(node, sibling) : _hashPair(sibling, node);
        }
        return node == root;
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 h) {
        assembly {
            mstore(0x00, a)
            mstore(0x20, b)
            h := keccak256(0x00, 0x40)
        }
    }
}
