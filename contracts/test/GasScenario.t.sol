// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Federation} from "../Federation.sol";
import {Fixtures} from "./Fixtures.sol";
import {VM} from "./Vm.sol";

/// @title GasScenarioTest
/// @notice Complete rounds at two federation sizes, for forge's gas report: every member
///         submits, then every member attests until the round finalizes; a vote admits one
///         institution and a member claims its score.  `fedchain audit` runs this suite with
///         `--gas-report --isolate`, so each call is measured as its own transaction.
contract GasScenarioTest {
    uint32 private constant ROUNDS = 3;

    function test_roundsWith3Members() public {
        _run(3);
    }

    function test_roundsWith10Members() public {
        _run(10);
    }

    function _run(uint256 n) private {
        address[] memory members = new address[](n);
        for (uint256 i = 0; i < n; ++i) {
            members[i] = Fixtures.account(string.concat("gas member ", VM.toString(i)));
        }
        Federation fed = Fixtures.deploy(members, 5001);
        uint256 taskId = Fixtures.createTask(fed, members[0], uint32(n), ROUNDS + 1);
        uint256[] memory scores = new uint256[](n);
        for (uint256 i = 0; i < n; ++i) {
            scores[i] = 10 + i;
        }
        for (uint32 r = 1; r <= ROUNDS; ++r) {
            for (uint256 i = 0; i < n; ++i) {
                VM.prank(members[i]);
                fed.submitUpdate(taskId, r, Fixtures.cidOf(VM.toString(i), taskId, r), 100, 1000);
            }
            bytes32[] memory leaves = Fixtures.leaves(taskId, r, members, scores);
            for (uint256 i = 0; i < n; ++i) {
                VM.prank(members[i]);
                fed.attestAggregate(taskId, r, Fixtures.cidOf("aggregate", taskId, r), Fixtures.root(leaves));
            }
            VM.prank(members[0]);
            fed.claimContribution(taskId, r, scores[0], Fixtures.proof(leaves, 0));
        }
        VM.assertEq(fed.task(taskId).finalizedRounds, ROUNDS, "every round finalized");
        address[] memory approvers = new address[](n - 1);
        for (uint256 i = 1; i < n; ++i) {
            approvers[i - 1] = members[i];
        }
        Fixtures.vote(fed, 0, Fixtures.account("newcomer"), members[0], approvers);
    }
}
