// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Federation} from "../Federation.sol";
import {FederationHandler} from "./FederationHandler.sol";
import {Fixtures} from "./Fixtures.sol";
import {VM} from "./Vm.sol";

/// @title FederationInvariantTest
/// @notice Stateful fuzzing: forge calls FederationHandler's actions in random order with random
///         arguments, and after every call checks the properties below.  Four founders, two
///         institutions that votes may admit, two outsiders and the deployer act on a federation
///         with one task (more may be created).
contract FederationInvariantTest {
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    uint8 private constant FINALIZED = 3;
    uint256 private constant FOUNDERS = 4;

    Federation private fed;
    FederationHandler private handler;
    address[] private _accounts;

    function setUp() public {
        for (uint256 i = 0; i < 6; ++i) {
            _accounts.push(Fixtures.account(string.concat("institution ", VM.toString(i))));
        }
        _accounts.push(Fixtures.account("outsider 0"));
        _accounts.push(Fixtures.account("outsider 1"));
        _accounts.push(address(this));
        address[] memory founders = new address[](FOUNDERS);
        for (uint256 i = 0; i < FOUNDERS; ++i) {
            founders[i] = _accounts[i];
        }
        fed = Fixtures.deploy(founders, 5001);
        uint256 taskId = Fixtures.createTask(fed, founders[0], 3, 50);
        handler = new FederationHandler(fed, _accounts, taskId);
    }

    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        bytes4[] memory s = new bytes4[](11);
        s[0] = handler.submit.selector;
        s[1] = handler.closeUpdates.selector;
        s[2] = handler.attest.selector;
        s[3] = handler.failRound.selector;
        s[4] = handler.reportDissent.selector;
        s[5] = handler.claim.selector;
        s[6] = handler.propose.selector;
        s[7] = handler.approve.selector;
        s[8] = handler.createTask.selector;
        s[9] = handler.warp.selector;
        s[10] = handler.progress.selector;
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), s);
    }

    /// @notice A non-member's call never changes the contract's storage (reportDissent may set
    ///         its one evidence flag: reporting is open to anyone by design).
    function invariant_nonMemberNeverChangesState() public view {
        VM.assertEq(handler.nonMemberViolation(), "", "non-member");
        for (uint256 i = 6; i < _accounts.length; ++i) {
            VM.assertFalse(fed.isMember(_accounts[i]), "an outsider became a member");
        }
    }

    /// @notice Once a round finalizes, its status, scores root and (while it is the latest)
    ///         aggregate never change.
    function invariant_finalizedRoundNeverChanges() public view {
        uint256 n = handler.finalizedCount();
        for (uint256 i = 0; i < n; ++i) {
            (uint256 t, uint32 r,, bytes32 root, bytes32 agg) = handler.finalized(i);
            Federation.RoundInfo memory info = fed.roundInfo(t, r);
            VM.assertEq(uint256(info.status), FINALIZED, "a finalized round changed status");
            VM.assertEq(info.scoresDigest, root, "a finalized round's scores root changed");
            Federation.TaskView memory tv = fed.task(t);
            if (tv.lastFinalizedRound == r) {
                VM.assertEq(info.aggregateDigest, agg, "the finalized aggregate changed");
                VM.assertEq(tv.globalModelDigest, agg, "the global model is not the last finalized aggregate");
            }
        }
    }

    /// @notice A round never counts more attestations than members eligible for it, and never
    ///         more in all (late ones included) than accounts that were members meanwhile.
    function invariant_attestationsNeverExceedMembers() public view {
        VM.assertEq(handler.attestViolation(), "", "attestations");
        uint256 n = handler.trackedRounds();
        for (uint256 i = 0; i < n; ++i) {
            (uint256 t, uint32 r) = handler.trackedRound(i);
            VM.assertLe(handler.attestationsBeforeFinal(t, r), handler.eligibleAtOpen(t, r), "attestations > eligible");
            VM.assertLe(handler.attestations(t, r), _popcount(handler.membersDuringRound(t, r)), "attestations > members");
        }
        for (uint256 k = 0; k < handler.taskCount(); ++k) {
            uint256 t = handler.tasks(k);
            Federation.TaskView memory tv = fed.task(t);
            Federation.RoundInfo memory open = fed.roundInfo(t, tv.currentRound);
            VM.assertLe(open.submissions, open.eligible, "submissions > eligible");
        }
    }

    /// @notice No update above its task's sample cap is ever recorded, so FedAvg weights and
    ///         credit only ever see bounded sample counts.
    function invariant_samplesNeverAboveTheCap() public view {
        VM.assertEq(handler.samplesViolation(), "", "samples");
        for (uint256 k = 0; k < handler.taskCount(); ++k) {
            uint256 t = handler.tasks(k);
            Federation.TaskView memory tv = fed.task(t);
            for (uint256 i = 0; i < handler.INSTITUTIONS(); ++i) {
                (, uint64 samples) = fed.submissionOf(t, tv.currentRound, _accounts[i]);
                VM.assertLe(samples, tv.maxSamples, "a recorded sample count exceeds the cap");
            }
        }
    }

    /// @notice Tasks are created only with a strict-majority quorum; every round opens needing a
    ///         strict majority of its eligible members (never more than are eligible), and every
    ///         finalization had votes from more than half of them.
    function invariant_finalizationNeedsAStrictMajority() public view {
        VM.assertEq(handler.quorumViolation(), "", "quorum");
        for (uint256 k = 0; k < handler.taskCount(); ++k) {
            uint256 t = handler.tasks(k);
            Federation.RoundInfo memory open = fed.roundInfo(t, fed.task(t).currentRound);
            if (open.status == Federation.RoundStatus.Finalized) continue;
            VM.assertGt(2 * uint256(open.need), open.eligible, "the open round needs no strict majority");
        }
    }

    /// @notice Credit and contribution only grow, and only by claims on finalized rounds of the
    ///         scores the finalizing quorum agreed.
    function invariant_creditOnlyGrowsFromFinalizedRounds() public view {
        VM.assertEq(handler.creditViolation(), "", "credit");
        for (uint256 i = 0; i < _accounts.length; ++i) {
            address a = _accounts[i];
            VM.assertEq(fed.creditOf(a), handler.claimedTotal(a), "credit differs from the claimed scores");
            VM.assertEq(fed.contributionOf(a), handler.claimedTotal(a), "contribution differs from the claimed scores");
        }
    }

    /// @notice The member list, count and peer-ID index agree; a federation is never empty.
    function invariant_membershipIsConsistent() public view {
        VM.assertEq(handler.governanceViolation(), "", "governance");
        address[] memory list = fed.members();
        VM.assertEq(list.length, fed.memberCount(), "members() length differs from memberCount");
        VM.assertGe(list.length, 1, "the federation has no member");
        for (uint256 i = 0; i < list.length; ++i) {
            VM.assertTrue(fed.isMember(list[i]), "a listed account is not a member");
            VM.assertEq(fed.memberByPeerId(fed.peerIdOf(list[i])), list[i], "peer ID index out of step");
        }
    }

    /// @notice Round counters stay in order: finalized <= rounds asked, last finalized <= current.
    function invariant_roundCountersInOrder() public view {
        uint256 finalizedSeen = handler.finalizedCount();
        uint256 finalizedOnChain = 0;
        for (uint256 k = 0; k < handler.taskCount(); ++k) {
            Federation.TaskView memory tv = fed.task(handler.tasks(k));
            VM.assertLe(tv.finalizedRounds, tv.numRounds, "more rounds finalized than the task asked");
            VM.assertLe(tv.lastFinalizedRound, tv.currentRound, "last finalized round after the current one");
            finalizedOnChain += tv.finalizedRounds;
        }
        VM.assertEq(finalizedOnChain, finalizedSeen, "finalizations the handler did not see");
    }

    /// @notice After each run: how much the run exercised, for the audit report.
    function afterInvariant() external {
        string memory path = VM.envOr("FEDCHAIN_INVARIANT_STATS", string("audit/out/invariant-stats.jsonl"));
        string memory counts = string.concat(
            '{"calls":', VM.toString(handler.calls()),
            ',"succeeded":', VM.toString(handler.succeeded()),
            ',"non_member_calls":', VM.toString(handler.nonMemberCalls()),
            ',"rounds_finalized":', VM.toString(handler.roundsFinalized()),
            ',"rounds_failed":', VM.toString(handler.roundsFailed())
        );
        string memory line = string.concat(
            counts,
            ',"claims":', VM.toString(handler.claims()),
            ',"dissents":', VM.toString(handler.dissents()),
            ',"dishonest_attestations":', VM.toString(handler.dishonestAttestations()),
            ',"membership_changes":', VM.toString(handler.membershipChanges()),
            ',"above_cap_refused":', VM.toString(handler.aboveCapRefused()),
            ',"tasks":', VM.toString(handler.taskCount()), "}"
        );
        VM.writeLine(path, line);
    }

    function _popcount(uint256 x) private pure returns (uint256 n) {
        for (; x != 0; x &= x - 1) {
            ++n;
        }
    }
}
