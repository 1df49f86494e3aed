// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Federation} from "../Federation.sol";
import {ScoreProof} from "../FederationLib.sol";
import {VM} from "./Vm.sol";

/// @notice Test data the suites share: named accounts, CIDs and score trees built the same way
///         the peers build them (consensus/merkle.py), so a proof that verifies here verifies
///         on-chain for the same reason it does for a real peer.
library Fixtures {
    bytes4 internal constant RAW_CID_PREFIX = 0x01551220;
    uint32 internal constant QUORUM = 2;
    uint64 internal constant ROUND_SECONDS = 100;
    uint64 internal constant ATTEST_SECONDS = 100;
    /// @dev The most samples one update may claim in the suites' tasks.
    uint64 internal constant MAX_SAMPLES = 1000;

    /// @return a deterministic account for `name` (no key needed: tests act through prank)
    function account(string memory name) internal pure returns (address) {
        return address(uint160(uint256(keccak256(abi.encodePacked("fedchain test account ", name)))));
    }

    /// @return a binary CIDv1 (raw codec, sha2-256) naming the digest `digest`
    function cid(bytes32 digest) internal pure returns (bytes memory) {
        return abi.encodePacked(RAW_CID_PREFIX, digest);
    }

    /// @return a CID derived from a label, for updates and aggregates of a test round
    function cidOf(string memory label, uint256 taskId, uint32 round) internal pure returns (bytes memory) {
        return cid(keccak256(abi.encode(label, taskId, round)));
    }

    function peerIdOf(address member) internal pure returns (string memory) {
        return string.concat("12D3KooTest", VM.toString(member));
    }

    /// @return a federation whose founders are `founders`, deployed by the caller
    function deploy(address[] memory founders, uint16 approvalBps) internal returns (Federation) {
        string[] memory ids = new string[](founders.length);
        for (uint256 i = 0; i < founders.length; ++i) {
            ids[i] = peerIdOf(founders[i]);
        }
        return new Federation(founders, ids, new bytes32[](0), bytes32(0), approvalBps);
    }

    /// @return id of a task created by `creator` with the suite's standard timing and sample cap
    function createTask(Federation fed, address creator, uint32 quorum, uint32 numRounds) internal returns (uint256 id) {
        VM.prank(creator);
        id = fed.createTask(
            cid(keccak256("spec")), cid(keccak256("model 0")), quorum, ROUND_SECONDS, ATTEST_SECONDS, numRounds, MAX_SAMPLES
        );
    }

    /// @notice Runs a proposal through: `proposer` proposes, then `approvers` approve in order
    ///         until it executes.
    function vote(Federation fed, uint8 kind, address target, address proposer, address[] memory approvers)
        internal
        returns (uint256 pid)
    {
        VM.prank(proposer);
        pid = fed.propose(kind, target, peerIdOf(target), bytes32(0), bytes32(0));
        for (uint256 i = 0; i < approvers.length && !fed.proposal(pid).executed; ++i) {
            VM.prank(approvers[i]);
            fed.approve(pid);
        }
        VM.assertTrue(fed.proposal(pid).executed, "the proposal did not execute");
    }

    // ------------------------------------------------------------------ score trees

    /// @return out the leaves for `members` with `scores`, in member order
    function leaves(uint256 taskId, uint32 round, address[] memory members, uint256[] memory scores)
        internal
        pure
        returns (bytes32[] memory out)
    {
        out = new bytes32[](members.length);
        for (uint256 i = 0; i < members.length; ++i) {
            out[i] = ScoreProof.leaf(taskId, round, members[i], scores[i]);
        }
    }

    /// @return the sorted-pair Merkle root of `nodes` (an odd node out is carried up a level)
    function root(bytes32[] memory nodes) internal pure returns (bytes32) {
        bytes32[] memory level = nodes;
        while (level.length > 1) {
            level = _up(level);
        }
        return level.length == 1 ? level[0] : bytes32(0);
    }

    /// @return out the siblings linking `nodes[index]` to `root(nodes)`
    function proof(bytes32[] memory nodes, uint256 index) internal pure returns (bytes32[] memory out) {
        bytes32[] memory path = new bytes32[](256);
        uint256 n = 0;
        bytes32[] memory level = nodes;
        while (level.length > 1) {
            uint256 sibling = index ^ 1;
            if (sibling < level.length) path[n++] = level[sibling];
            level = _up(level);
            index >>= 1;
        }
        out = new bytes32[](n);
        for (uint256 i = 0; i < n; ++i) {
            out[i] = path[i];
        }
    }

    function _up(bytes32[] memory level) private pure returns (bytes32[] memory next) {
        next = new bytes32[]((level.length + 1) / 2);
        for (uint256 i = 0; i < next.length; ++i) {
            uint256 l = 2 * i;
            if (l + 1 == level.length) {
                next[i] = level[l];
            } else {
                (bytes32 a, bytes32 b) = level[l] <= level[l + 1] ? (level[l], level[l + 1]) : (level[l + 1], level[l]);
                next[i] = keccak256(abi.encodePacked(a, b));
            }
        }
    }
}
