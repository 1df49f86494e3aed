// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Federation} from "../Federation.sol";
import {Fixtures} from "./Fixtures.sol";
import {VM, Vm} from "./Vm.sol";

/// @title FederationFuzzTest
/// @notice Property tests over single calls with fuzzed inputs: CID parsing, score proofs, the
///         approval threshold, deadlines, task configuration, and arbitrary calldata from
///         non-members.
contract FederationFuzzTest {
    Federation private fed;
    uint256 private taskId;
    address[] private founders;

    function setUp() public {
        for (uint256 i = 0; i < 3; ++i) {
            founders.push(Fixtures.account(string.concat("founder ", VM.toString(i))));
        }
        fed = Fixtures.deploy(founders, 5001);
        taskId = Fixtures.createTask(fed, founders[0], Fixtures.QUORUM, 10);
    }

    /// @notice submitUpdate accepts exactly the 36-byte CIDv1s (raw or dag-pb, sha2-256) and
    ///         stores the digest they carry.  Inputs are built near the accepted form (one of
    ///         the two prefixes, a flipped prefix bit, a length off by a few bytes) or arbitrary.
    function testFuzz_cidIsAcceptedExactlyWhenWellFormed(bytes32 digest, uint8 mode, uint8 tweak, bytes calldata junk)
        public
    {
        bytes memory cid;
        if (mode % 5 == 0) cid = abi.encodePacked(bytes4(0x01551220), digest);
        else if (mode % 5 == 1) cid = abi.encodePacked(bytes4(0x01701220), digest);
        else if (mode % 5 == 2) cid = abi.encodePacked(bytes4(0x01551220) ^ bytes4(uint32(1) << (tweak % 32)), digest);
        else if (mode % 5 == 3) cid = abi.encodePacked(bytes4(0x01551220), digest, bytes(junk.length > 0 ? junk[:1 + tweak % junk.length] : bytes("")));
        else cid = junk;
        bytes4 prefix = cid.length >= 4 ? bytes4(_first4(cid)) : bytes4(0);
        bool wellFormed = cid.length == 36 && (prefix == 0x01551220 || prefix == 0x01701220);
        VM.prank(founders[0]);
        (bool ok, bytes memory ret) = address(fed).call(abi.encodeCall(fed.submitUpdate, (taskId, 1, cid, 7, 0)));
        VM.assertEq(ok, wellFormed, "acceptance differs from the CID format");
        if (!ok) {
            VM.assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(Federation.InvalidCid.selector)), "InvalidCid expected");
            return;
        }
        (bytes32 stored, uint64 samples) = fed.submissionOf(taskId, 1, founders[0]);
        VM.assertEq(stored, digest, "stored digest");
        VM.assertEq(samples, 7, "stored sample count");
    }

    function _first4(bytes memory b) private pure returns (bytes4 out) {
        assembly {
            out := mload(add(b, 32))
        }
    }

    /// @notice A claim succeeds exactly for a member's own agreed score with a valid proof, once.
    function testFuzz_claimNeedsTheAgreedScoreAndProof(uint256[3] memory scores, uint8 claimer, uint256 wrongScore) public {
        for (uint256 k = 0; k < 3; ++k) {
            scores[k] = scores[k] % (uint256(type(uint128).max) + 1);
        }
        uint256[] memory s = new uint256[](3);
        (s[0], s[1], s[2]) = (scores[0], scores[1], scores[2]);
        bytes32[] memory leaves = Fixtures.leaves(taskId, 1, founders, s);
        _finalizeRound1(Fixtures.root(leaves));
        uint256 i = claimer % 3;
        bytes32[] memory path = Fixtures.proof(leaves, i);

        if (wrongScore != s[i]) {
            VM.prank(founders[i]);
            VM.expectRevert(abi.encodeWithSelector(Federation.InvalidProof.selector));
            fed.claimContribution(taskId, 1, wrongScore, path);
        }
        VM.prank(founders[(i + 1) % 3]);
        (bool stolen,) = address(fed).call(abi.encodeCall(fed.claimContribution, (taskId, 1, s[i], path)));
        VM.assertTrue(!stolen || s[(i + 1) % 3] == s[i], "a member claimed another member's score");

        uint256 before = fed.creditOf(founders[i]);
        VM.prank(founders[i]);
        fed.claimContribution(taskId, 1, s[i], path);
        VM.assertEq(fed.creditOf(founders[i]), before + s[i], "credit grows by the score");
        VM.prank(founders[i]);
        VM.expectRevert(abi.encodeWithSelector(Federation.AlreadyClaimed.selector));
        fed.claimContribution(taskId, 1, s[i], path);
    }

    /// @notice A proposal executes at the first approval that reaches approvalBps of the
    ///         members counted when it was made, and not before.
    function testFuzz_proposalExecutesAtTheThreshold(uint16 bpsSeed, uint8 sizeSeed) public {
        uint16 bps = uint16(1 + bpsSeed % 10_000);
        uint256 n = 1 + sizeSeed % 7;
        address[] memory members = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            members[i] = Fixtures.account(string.concat("voter ", VM.toString(i)));
        }
        Federation f = Fixtures.deploy(members, bps);
        address candidate = Fixtures.account("candidate");
        VM.prank(members[0]);
        uint256 pid = f.propose(0, candidate, Fixtures.peerIdOf(candidate), bytes32(0), bytes32(0));
        for (uint256 k = 1; k <= n; ++k) {
            bool reached = k * 10_000 >= uint256(bps) * n;
            VM.assertEq(f.isMember(candidate), reached, "membership differs from the threshold rule");
            if (reached) return;
            VM.prank(members[k]);
            f.approve(pid);
        }
        revert("the threshold was never reached");
    }

    /// @notice Submissions are accepted up to the submission deadline and not one second later;
    ///         attestations likewise up to the attestation deadline.
    function testFuzz_deadlinesAreInclusive(uint32 submitDelay, uint32 attestDelay) public {
        uint256 opened = block.timestamp;
        uint256 submitDeadline = opened + Fixtures.ROUND_SECONDS;
        uint256 attestDeadline = submitDeadline + Fixtures.ATTEST_SECONDS;
        VM.warp(opened + submitDelay % (2 * Fixtures.ROUND_SECONDS));
        VM.prank(founders[0]);
        (bool ok,) = address(fed).call(abi.encodeCall(fed.submitUpdate, (taskId, 1, Fixtures.cidOf("u", taskId, 1), 1, 0)));
        VM.assertEq(ok, block.timestamp <= submitDeadline, "submission deadline");
        if (!ok) return;
        for (uint256 i = 1; i < 3; ++i) {
            VM.prank(founders[i]);
            (bool more,) = address(fed).call(abi.encodeCall(fed.submitUpdate, (taskId, 1, Fixtures.cidOf("u", taskId, 1), 1, 0)));
            VM.assertTrue(more, "the other founders submit in time");
        }
        VM.warp(submitDeadline + attestDelay % (2 * Fixtures.ATTEST_SECONDS));
        VM.prank(founders[0]);
        (ok,) = address(fed).call(
            abi.encodeCall(fed.attestAggregate, (taskId, 1, Fixtures.cidOf("agg", taskId, 1), keccak256("scores")))
        );
        VM.assertEq(ok, block.timestamp <= attestDeadline, "attestation deadline");
    }

    /// @notice createTask accepts exactly the documented ranges, and a quorum only when it is a
    ///         strict majority of the members (3 here).
    function testFuzz_taskConfigRanges(
        uint32 quorum,
        uint64 roundDuration,
        uint64 attestDuration,
        uint32 numRounds,
        uint64 maxSamples
    ) public {
        bool valid = quorum >= 1 && roundDuration >= 1 && roundDuration <= type(uint32).max && attestDuration >= 1
            && attestDuration <= type(uint32).max && numRounds >= 1 && numRounds <= type(uint16).max && maxSamples >= 1;
        bool majority = 2 * uint256(quorum) > founders.length;
        VM.prank(founders[1]);
        (bool ok, bytes memory ret) = address(fed).call(
            abi.encodeCall(
                fed.createTask,
                (
                    Fixtures.cid(keccak256("s")),
                    Fixtures.cid(keccak256("m")),
                    quorum,
                    roundDuration,
                    attestDuration,
                    numRounds,
                    maxSamples
                )
            )
        );
        VM.assertEq(ok, valid && majority, "acceptance differs from the documented ranges");
        if (quorum >= 1 && !majority) {
            bytes memory expected = abi.encodeWithSelector(Federation.QuorumNotMajority.selector, quorum, uint32(3));
            VM.assertEq(keccak256(ret), keccak256(expected), "QuorumNotMajority expected");
        }
        if (ok) VM.assertEq(fed.task(fed.taskCount()).maxSamples, maxSamples, "maxSamples as given");
    }

    /// @notice An update is recorded exactly when it claims 1..maxSamples samples; above the cap
    ///         it is refused with SamplesAboveCap and nothing is stored.
    function testFuzz_samplesAboveTheCapAreRefused(uint64 numSamples) public {
        uint64 cap = fed.task(taskId).maxSamples;
        VM.prank(founders[0]);
        (bool ok, bytes memory ret) =
            address(fed).call(abi.encodeCall(fed.submitUpdate, (taskId, 1, Fixtures.cidOf("u", taskId, 1), numSamples, 0)));
        VM.assertEq(ok, numSamples >= 1 && numSamples <= cap, "acceptance differs from 1..maxSamples");
        (, uint64 stored) = fed.submissionOf(taskId, 1, founders[0]);
        VM.assertEq(stored, ok ? numSamples : 0, "stored sample count");
        if (numSamples > cap) {
            bytes memory expected = abi.encodeWithSelector(Federation.SamplesAboveCap.selector, numSamples, cap);
            VM.assertEq(keccak256(ret), keccak256(expected), "SamplesAboveCap expected");
        }
    }

    /// @notice However membership changes while a task runs, every round's need is a strict
    ///         majority of the members eligible for it, at least the quorum where that many are
    ///         eligible, and never more than are eligible (so a round can always finalize).
    function testFuzz_needStaysAStrictMajority(uint8 sizeSeed, uint32 quorumSeed, uint8 admitSeed, uint8 removeSeed)
        public
    {
        uint256 n = 1 + sizeSeed % 6;
        address[] memory members = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            members[i] = Fixtures.account(string.concat("majority ", VM.toString(i)));
        }
        Federation f = Fixtures.deploy(members, 10_000);
        uint32 quorum = uint32(n / 2 + 1 + quorumSeed % (n / 2 + 1));
        uint256 t = Fixtures.createTask(f, members[0], quorum, 3);
        _checkNeed(f, t, 1, quorum);
        uint256 admit = admitSeed % 4;
        for (uint256 k = 0; k < admit; ++k) {
            address newcomer = Fixtures.account(string.concat("newcomer ", VM.toString(k)));
            Fixtures.vote(f, 0, newcomer, members[0], _allBut(f, members[0]));
        }
        uint256 remove = n > 1 ? removeSeed % n : 0;
        for (uint256 k = 0; k < remove; ++k) {
            Fixtures.vote(f, 1, members[n - 1 - k], members[0], _allBut(f, members[0]));
        }
        VM.warp(block.timestamp + Fixtures.ROUND_SECONDS + 1);
        VM.prank(members[0]);
        f.failRound(t, 1);
        _checkNeed(f, t, 2, quorum);
        VM.assertEq(f.roundInfo(t, 2).eligible, n + admit - remove, "round 2 counts today's members");
    }

    function _checkNeed(Federation f, uint256 t, uint32 round, uint32 quorum) private view {
        Federation.RoundInfo memory info = f.roundInfo(t, round);
        VM.assertGt(2 * uint256(info.need), info.eligible, "need is not a strict majority");
        VM.assertLe(info.need, info.eligible, "need exceeds the eligible members");
        VM.assertGe(info.need, quorum < info.eligible ? quorum : info.eligible, "need below the quorum");
    }

    function _allBut(Federation f, address skip) private view returns (address[] memory out) {
        address[] memory list = f.members();
        out = new address[](list.length - 1);
        uint256 j = 0;
        for (uint256 i = 0; i < list.length; ++i) {
            if (list[i] != skip) out[j++] = list[i];
        }
    }

    /// @notice Arbitrary calldata from an account that is not a member leaves storage untouched
    ///         (except the evidence flag reportDissent may set for anyone).
    function testFuzz_nonMemberCalldataChangesNothing(address caller, uint8 which, bytes calldata tail) public {
        VM.assume(!fed.isMember(caller) && caller != address(VM));
        bytes4[9] memory selectors = [
            fed.propose.selector,
            fed.approve.selector,
            fed.createTask.selector,
            fed.submitUpdate.selector,
            fed.closeUpdates.selector,
            fed.attestAggregate.selector,
            fed.failRound.selector,
            fed.claimContribution.selector,
            fed.reportDissent.selector
        ];
        bytes4 selector = selectors[which % 9];
        VM.startStateDiffRecording();
        VM.prank(caller);
        (bool ok,) = address(fed).call(bytes.concat(selector, tail));
        Vm.AccountAccess[] memory accesses = VM.stopAndReturnStateDiff();
        uint256 writes = 0;
        for (uint256 i = 0; i < accesses.length; ++i) {
            if (accesses[i].account != address(fed) || accesses[i].reverted) continue;
            for (uint256 j = 0; j < accesses[i].storageAccesses.length; ++j) {
                Vm.StorageAccess memory a = accesses[i].storageAccesses[j];
                if (a.isWrite && !a.reverted && a.previousValue != a.newValue) ++writes;
            }
        }
        if (selector == fed.reportDissent.selector) {
            VM.assertLe(writes, 1, "reportDissent wrote more than its flag");
        } else {
            VM.assertEq(writes, 0, "a non-member's call changed storage");
            VM.assertFalse(ok, "a non-member's state-changing call succeeded");
        }
    }

    function _finalizeRound1(bytes32 scoresRoot) private {
        for (uint256 i = 0; i < 3; ++i) {
            VM.prank(founders[i]);
            fed.submitUpdate(taskId, 1, Fixtures.cidOf(VM.toString(i), taskId, 1), 5, 0);
        }
        for (uint256 i = 0; i < Fixtures.QUORUM; ++i) {
            VM.prank(founders[i]);
            fed.attestAggregate(taskId, 1, Fixtures.cidOf("aggregate", taskId, 1), scoresRoot);
        }
        VM.assertEq(fed.task(taskId).lastFinalizedRound, 1, "round 1 finalized");
    }
}
