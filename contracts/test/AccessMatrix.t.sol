// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Federation} from "../Federation.sol";
import {Fixtures} from "./Fixtures.sol";
import {VM} from "./Vm.sol";

/// @title AccessMatrixTest
/// @notice Calls every external function of Federation as every caller role and writes what
///         happened (success, or the revert data) to a JSON file that `fedchain audit` turns
///         into the access-control matrix.  Each call runs in a state where a current, eligible
///         member's call succeeds, so a refusal is caused by the role and nothing else.  The
///         test also asserts the policy the contract documents, so it fails when the contract
///         drifts from it.
contract AccessMatrixTest {
    uint8 private constant ADMIT = 0;
    uint8 private constant REMOVE = 1;

    string[] private _roleNames;
    address[] private _roleAccounts;

    Federation private fed;
    uint256 private taskId;
    address private m0;
    address private m1;
    address private m2;
    address private removed;
    address private late;
    address private outsider;
    address private candidate;

    function setUp() public {
        m0 = Fixtures.account("member 0");
        m1 = Fixtures.account("member 1");
        m2 = Fixtures.account("member 2");
        removed = Fixtures.account("removed member");
        late = Fixtures.account("late member");
        outsider = Fixtures.account("outsider");
        candidate = Fixtures.account("candidate");

        address[] memory founders = new address[](4);
        (founders[0], founders[1], founders[2], founders[3]) = (m0, m1, m2, removed);
        fed = Fixtures.deploy(founders, 5001);

        // The task starts with m0, m1, m2 (a quorum of 2 is a strict majority of 3); `late` joins
        // while its round 1 is open.
        address[] memory approvers = new address[](2);
        (approvers[0], approvers[1]) = (m1, m2);
        Fixtures.vote(fed, REMOVE, removed, m0, approvers);
        taskId = Fixtures.createTask(fed, m0, Fixtures.QUORUM, 5);
        Fixtures.vote(fed, ADMIT, late, m0, approvers);

        _role("deployer (not a founder)", address(this));
        _role("outsider", outsider);
        _role("member", m2);
        _role("removed member", removed);
        _role("member admitted mid-round", late);
    }

    function _role(string memory name, address who) private {
        _roleNames.push(name);
        _roleAccounts.push(who);
    }

    /// @notice The matrix itself: one JSON record per (function, role).
    function test_accessControlMatrix() public {
        string memory out = VM.envOr("FEDCHAIN_ACCESS_MATRIX", string("audit/out/access-matrix.json"));
        string memory json = string.concat('{"contract":"Federation","roles":', _rolesJson(), ',"cells":[');
        uint256 functions = _functionCount();
        bool first = true;
        for (uint256 f = 0; f < functions; ++f) {
            for (uint256 r = 0; r < _roleAccounts.length; ++r) {
                uint256 snap = VM.snapshotState();
                address who = _roleAccounts[r];
                (bytes memory data, bool mutates) = _scenario(f, who);
                VM.prank(who);
                (bool ok, bytes memory ret) = address(fed).call(data);
                VM.revertToState(snap);
                json = string.concat(json, first ? "" : ",", _cellJson(data, r, ok, ret, mutates));
                first = false;
                _checkPolicy(bytes4(data), r, mutates, ok, ret);
            }
        }
        VM.writeFile(out, string.concat(json, "]}\n"));
    }

    // ------------------------------------------------------------------ policy

    /// @dev The documented rules: reads are open to anyone; every state-changing call needs a
    ///      current member, except reportDissent (anyone may record evidence the state already
    ///      proves); submitting and attesting also need admission before the round opened.
    function _checkPolicy(bytes4 selector, uint256 r, bool mutates, bool ok, bytes memory ret) private view {
        address who = _roleAccounts[r];
        bool member = who == m2 || who == late;
        bool eligible = who == m2;
        bool roundCall = selector == fed.submitUpdate.selector || selector == fed.attestAggregate.selector;
        if (!mutates || selector == fed.reportDissent.selector || (member && (eligible || !roundCall))) {
            VM.assertTrue(ok, string.concat(_roleNames[r], " was refused ", VM.toString(ret)));
        } else if (member) {
            VM.assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(Federation.NotEligible.selector, who, uint32(1))), "NotEligible expected");
        } else {
            VM.assertEq(keccak256(ret), keccak256(abi.encodeWithSelector(Federation.NotMember.selector, who)), "NotMember expected");
        }
    }

    // ------------------------------------------------------------------ scenarios

    function _functionCount() private pure returns (uint256) {
        return 10 + 23;
    }

    /// @return data the call to make for function number `f` as `who`, after preparing a state
    ///         in which an eligible member's call succeeds
    /// @return mutates whether the function changes state
    function _scenario(uint256 f, address who) private returns (bytes memory data, bool mutates) {
        uint32 round = 1;
        mutates = true;
        if (f == 0) {
            data = abi.encodeCall(fed.propose, (ADMIT, candidate, Fixtures.peerIdOf(candidate), bytes32(0), bytes32(0)));
        } else if (f == 1) {
            VM.prank(m0);
            uint256 pid = fed.propose(ADMIT, candidate, Fixtures.peerIdOf(candidate), bytes32(0), bytes32(0));
            data = abi.encodeCall(fed.approve, (pid));
        } else if (f == 2) {
            data = abi.encodeCall(
                fed.createTask,
                (Fixtures.cid(keccak256("spec 2")), Fixtures.cid(keccak256("model")), 3, 100, 100, 3, 1000)
            );
        } else if (f == 3) {
            data = abi.encodeCall(fed.submitUpdate, (taskId, round, Fixtures.cidOf("update", taskId, round), 10, 0));
        } else if (f == 4) {
            _submit(m0);
            _submit(m1);
            VM.warp(block.timestamp + Fixtures.ROUND_SECONDS + 1);
            data = abi.encodeCall(fed.closeUpdates, (taskId, round));
        } else if (f == 5) {
            _closeWith(m0, m1);
            data = abi.encodeCall(fed.attestAggregate, (taskId, round, _aggregate(), _scoresRoot()));
        } else if (f == 6) {
            _submit(m0);
            VM.warp(block.timestamp + Fixtures.ROUND_SECONDS + 1);
            data = abi.encodeCall(fed.failRound, (taskId, round));
        } else if (f == 7) {
            _closeWith(m0, m1);
            _attest(m0, Fixtures.cidOf("a wrong aggregate", taskId, round));
            _attest(m1, _aggregate());
            _attest(m2, _aggregate());
            data = abi.encodeCall(fed.reportDissent, (taskId, round, m0));
        } else if (f == 8) {
            _closeWith(m0, m1);
            _attest(m0, _aggregate());
            _attest(m1, _aggregate());
            (uint256 score, bytes32[] memory path) = _claimFor(who);
            data = abi.encodeCall(fed.claimContribution, (taskId, round, score, path));
        } else if (f == 9) {
            data = abi.encodeCall(fed.setEncryptionKey, (bytes32(uint256(uint160(who)))));
        } else {
            mutates = false;
            data = _view(f - 10, who);
        }
    }

    function _view(uint256 v, address who) private view returns (bytes memory) {
        uint32 round = 1;
        bytes[23] memory calls = [
            abi.encodeCall(fed.isMember, (who)),
            abi.encodeCall(fed.memberCount, ()),
            abi.encodeCall(fed.peerIdOf, (m0)),
            abi.encodeCall(fed.memberByPeerId, (Fixtures.peerIdOf(m0))),
            abi.encodeCall(fed.members, ()),
            abi.encodeCall(fed.taskCount, ()),
            abi.encodeCall(fed.proposalCount, ()),
            abi.encodeCall(fed.proposal, (1)),
            abi.encodeCall(fed.hasApproved, (1, m0)),
            abi.encodeCall(fed.task, (taskId)),
            abi.encodeCall(fed.roundInfo, (taskId, round)),
            abi.encodeCall(fed.submissionOf, (taskId, round, m0)),
            abi.encodeCall(fed.attestationOf, (taskId, round, m0)),
            abi.encodeCall(fed.privacySpentOf, (taskId, m0)),
            abi.encodeCall(fed.contributionOf, (who)),
            abi.encodeCall(fed.creditOf, (who)),
            abi.encodeCall(fed.hasClaimed, (taskId, round, who)),
            abi.encodeCall(fed.dissentReported, (taskId, round, m0)),
            abi.encodeCall(fed.MAX_MEMBERS, ()),
            abi.encodeCall(fed.PROPOSAL_TTL, ()),
            abi.encodeCall(fed.approvalBps, ()),
            abi.encodeCall(fed.encryptionKeyOf, (m0)),
            abi.encodeCall(fed.auditKey, ())
        ];
        return calls[v];
    }

    function _submit(address member) private {
        VM.prank(member);
        fed.submitUpdate(taskId, 1, Fixtures.cidOf(VM.toString(member), taskId, 1), 10, 0);
    }

    function _closeWith(address a, address b) private {
        _submit(a);
        _submit(b);
        VM.warp(block.timestamp + Fixtures.ROUND_SECONDS + 1);
        VM.prank(a);
        fed.closeUpdates(taskId, 1);
    }

    function _attest(address member, bytes memory aggregateCid) private {
        VM.prank(member);
        fed.attestAggregate(taskId, 1, aggregateCid, _scoresRoot());
    }

    function _aggregate() private view returns (bytes memory) {
        return Fixtures.cidOf("aggregate", taskId, 1);
    }

    /// @dev Every role account gets a score, so a claim is refused only for who is claiming.
    function _scoreLeaves() private view returns (bytes32[] memory) {
        uint256[] memory scores = new uint256[](_roleAccounts.length);
        for (uint256 i = 0; i < scores.length; ++i) {
            scores[i] = 100 + i;
        }
        return Fixtures.leaves(taskId, 1, _roleAccounts, scores);
    }

    function _scoresRoot() private view returns (bytes32) {
        return Fixtures.root(_scoreLeaves());
    }

    function _claimFor(address who) private view returns (uint256 score, bytes32[] memory path) {
        for (uint256 i = 0; i < _roleAccounts.length; ++i) {
            if (_roleAccounts[i] == who) return (100 + i, Fixtures.proof(_scoreLeaves(), i));
        }
        revert("no score for this role");
    }

    // ------------------------------------------------------------------ JSON

    function _rolesJson() private view returns (string memory json) {
        json = "[";
        for (uint256 r = 0; r < _roleNames.length; ++r) {
            json = string.concat(json, r == 0 ? '"' : ',"', _roleNames[r], '"');
        }
        json = string.concat(json, "]");
    }

    function _cellJson(bytes memory data, uint256 r, bool ok, bytes memory ret, bool mutates)
        private
        view
        returns (string memory)
    {
        return string.concat(
            '{"selector":"',
            VM.toString(abi.encodePacked(bytes4(data))),
            '","role":"',
            _roleNames[r],
            '","mutates":',
            mutates ? "true" : "false",
            ',"ok":',
            ok ? "true" : "false",
            ',"revert":"',
            ok ? "" : VM.toString(ret),
            '"}'
        );
    }
}
