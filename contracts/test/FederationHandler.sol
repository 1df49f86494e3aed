// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {Federation} from "../Federation.sol";
import {Fixtures} from "./Fixtures.sol";
import {VM, Vm} from "./Vm.sol";

/// @title FederationHandler
/// @notice The actions forge's invariant fuzzer strings together: members and non-members
///         submitting, closing, attesting (honestly or not), failing rounds, voting, claiming
///         and reporting dissent while time moves on.  Actors are chosen mostly so that calls
///         can succeed (a round needs many well-ordered calls to finalize) and sometimes at
///         random, so refusals are exercised too.  Every call goes through `_call`, which
///         records what the invariants need:
///           - for a caller that is not a member: the storage writes the call left behind;
///           - for every call: whether any account's credit moved other than by a claim;
///           - attestations per round and which pair each finalized round agreed on, with the
///             votes for each pair (finalization needs more than half the eligible members);
///           - sample counts the contract accepted against the task's cap.
contract FederationHandler {
    uint256 public constant INSTITUTIONS = 6;
    uint256 public constant MAX_TASKS = 3;
    uint8 private constant VARIANTS = 3;

    Federation public immutable fed;
    address[] public accounts;
    uint256[] public tasks;

    struct Finalized {
        uint256 taskId;
        uint32 round;
        uint8 variant;
        bytes32 scoresRoot;
        bytes32 aggregate;
    }

    Finalized[] public finalized;
    mapping(uint256 => mapping(uint32 => uint256)) public finalizedIndex; // index + 1; 0 = not finalized

    mapping(uint256 => mapping(uint32 => uint32)) public attestations;
    mapping(uint256 => mapping(uint32 => uint32)) public attestationsBeforeFinal;
    mapping(uint256 => mapping(uint32 => uint32)) public eligibleAtOpen;
    mapping(uint256 => mapping(uint32 => mapping(address => bool))) public hasAttested;
    mapping(uint256 => mapping(uint32 => mapping(uint8 => uint32))) public votesFor; // in-round votes per pair
    mapping(uint256 => mapping(uint32 => uint256)) public membersDuringRound; // bitmask of accounts
    uint32[] private _roundKeysRound;
    uint256[] private _roundKeysTask;

    mapping(uint256 => mapping(uint32 => address)) public dissenter; // latest in-round dishonest attester
    mapping(address => uint256) public claimedTotal;
    /// @dev First violation seen of each kind ("" while none): the invariants assert these are empty.
    string public nonMemberViolation;
    string public creditViolation;
    string public attestViolation;
    string public governanceViolation;
    string public samplesViolation;
    string public quorumViolation;

    // statistics for the report (how much the invariants actually exercised)
    uint256 public calls;
    uint256 public succeeded;
    uint256 public nonMemberCalls;
    uint256 public roundsFinalized;
    uint256 public roundsFailed;
    uint256 public claims;
    uint256 public dissents;
    uint256 public dishonestAttestations;
    uint256 public membershipChanges;
    uint256 public aboveCapRefused;

    constructor(Federation fed_, address[] memory accounts_, uint256 firstTask) {
        fed = fed_;
        accounts = accounts_;
        tasks.push(firstTask);
        _trackRound(firstTask, 1);
    }

    function accountCount() external view returns (uint256) {
        return accounts.length;
    }

    function taskCount() external view returns (uint256) {
        return tasks.length;
    }

    function finalizedCount() external view returns (uint256) {
        return finalized.length;
    }

    function trackedRounds() external view returns (uint256) {
        return _roundKeysTask.length;
    }

    function trackedRound(uint256 i) external view returns (uint256 taskId, uint32 round) {
        return (_roundKeysTask[i], _roundKeysRound[i]);
    }

    // ------------------------------------------------------------------ actions

    function submit(uint256 actorSeed, uint256 taskSeed, uint64 samples) external {
        uint256 t = _task(taskSeed);
        uint32 r = fed.task(t).currentRound + (_h(actorSeed, "round") % 8 == 0 ? 1 : 0);
        address who = _actor(actorSeed, t, r, 1);
        // Up to 1.2x the suite's cap: about one submission in six claims too many samples.
        uint64 n = uint64(1 + (samples % (Fixtures.MAX_SAMPLES * 6 / 5)));
        bool ok = _call(who, abi.encodeCall(fed.submitUpdate, (t, r, Fixtures.cidOf(VM.toString(who), t, r), n, 0)));
        uint64 cap = fed.task(t).maxSamples;
        if (ok && n > cap) _violate(samplesViolation, "a submission above the task's sample cap was recorded");
        if (!ok && n > cap) aboveCapRefused += 1;
    }

    function closeUpdates(uint256 actorSeed, uint256 taskSeed) external {
        uint256 t = _task(taskSeed);
        uint32 r = fed.task(t).currentRound;
        _call(_actor(actorSeed, t, r, 0), abi.encodeCall(fed.closeUpdates, (t, r)));
    }

    /// @dev Mostly the honest pair (variant 0) for the open round; sometimes one of two
    ///      dishonest pairs, sometimes a late attestation of the last finalized round.
    function attest(uint256 actorSeed, uint256 taskSeed, uint256 variantSeed) external {
        uint256 t = _task(taskSeed);
        Federation.TaskView memory before = fed.task(t);
        uint256 h = _h(variantSeed, "attest");
        uint32 r = h % 8 == 0 ? before.lastFinalizedRound : before.currentRound;
        uint8 v = (h >> 8) % 6 == 0 ? uint8(1 + (h >> 16) % (VARIANTS - 1)) : 0;
        _attest(_actor(actorSeed, t, r, 2), t, r, v);
    }

    /// @notice One step of an honest round, so that rounds finalize often enough for the
    ///         invariants about finalized rounds and credit to bite: while collecting, every
    ///         member submits and, if that does not close the set, time moves past the deadline
    ///         and a member closes it; once closed, members attest the honest pair until the
    ///         round finalizes.  Each call still goes through `_call` and its checks.
    function progress(uint256 taskSeed) external {
        uint256 t = _task(taskSeed);
        uint32 r = fed.task(t).currentRound;
        Federation.RoundInfo memory info = fed.roundInfo(t, r);
        if (info.status == Federation.RoundStatus.Collecting && block.timestamp <= info.submitDeadline) {
            for (uint256 i = 0; i < INSTITUTIONS; ++i) {
                address a = accounts[i];
                (, uint64 samples) = fed.submissionOf(t, r, a);
                if (fed.isMember(a) && samples == 0) {
                    _call(a, abi.encodeCall(fed.submitUpdate, (t, r, Fixtures.cidOf(VM.toString(a), t, r), 10, 0)));
                }
            }
            info = fed.roundInfo(t, r);
            if (info.status == Federation.RoundStatus.Collecting) {
                VM.warp(info.submitDeadline + 1);
                _call(_actor(taskSeed, t, r, 0), abi.encodeCall(fed.closeUpdates, (t, r)));
            }
            info = fed.roundInfo(t, r);
        }
        if (info.status != Federation.RoundStatus.Closed) return;
        // One round in four, the first attester is a faulty aggregator (a dishonest pair).
        uint8 v = _h(taskSeed, "faulty") % 4 == 0 ? 1 : 0;
        for (uint256 i = 0; i < INSTITUTIONS && fed.roundInfo(t, r).status == Federation.RoundStatus.Closed; ++i) {
            if (fed.isMember(accounts[i]) && !hasAttested[t][r][accounts[i]]) {
                _attest(accounts[i], t, r, v);
                v = 0;
            }
        }
    }

    function _attest(address who, uint256 t, uint32 r, uint8 v) private {
        Federation.TaskView memory before = fed.task(t);
        bool wasFinal = finalizedIndex[t][r] != 0;
        bool ok = _call(who, abi.encodeCall(fed.attestAggregate, (t, r, aggregateCid(t, r, v), scoresRoot(t, r, v))));
        if (!ok) return;
        if (hasAttested[t][r][who]) _violate(attestViolation, "an account attested the same round twice");
        hasAttested[t][r][who] = true;
        attestations[t][r] += 1;
        if (!wasFinal) attestationsBeforeFinal[t][r] += 1;
        if (!wasFinal) votesFor[t][r][v] += 1;
        if (!wasFinal && v != 0) {
            dissenter[t][r] = who;
            dishonestAttestations += 1;
        }
        Federation.TaskView memory afterwards = fed.task(t);
        if (afterwards.finalizedRounds != before.finalizedRounds) {
            if (wasFinal || afterwards.lastFinalizedRound != r) _violate(attestViolation, "finalization of an unexpected round");
            if (2 * uint256(votesFor[t][r][v]) <= eligibleAtOpen[t][r]) {
                _violate(quorumViolation, "a round finalized with votes of half its eligible members or fewer");
            }
            finalized.push(Finalized(t, r, v, scoresRoot(t, r, v), keccak256(abi.encode("aggregate", t, r, v))));
            finalizedIndex[t][r] = finalized.length;
            roundsFinalized += 1;
            _trackRound(t, afterwards.currentRound);
        }
    }

    function failRound(uint256 actorSeed, uint256 taskSeed) external {
        uint256 t = _task(taskSeed);
        uint32 r = fed.task(t).currentRound;
        if (_call(_actor(actorSeed, t, r, 0), abi.encodeCall(fed.failRound, (t, r)))) {
            roundsFailed += 1;
            _trackRound(t, r + 1);
        }
    }

    function reportDissent(uint256 actorSeed, uint256 taskSeed, uint256 memberSeed) external {
        uint256 t = _task(taskSeed);
        uint32 r = fed.task(t).lastFinalizedRound;
        uint256 h = _h(memberSeed, "dissenter");
        address member = accounts[h % accounts.length];
        if ((h >> 8) % 4 != 0 && dissenter[t][r] != address(0)) member = dissenter[t][r];
        if (_call(accounts[_h(actorSeed, "reporter") % accounts.length], abi.encodeCall(fed.reportDissent, (t, r, member)))) {
            dissents += 1;
        }
    }

    /// @dev Mostly a claim on a round the handler saw finalize, with the agreed scores; else
    ///      any round of any task, another pair's scores, or a tampered score.
    function claim(uint256 actorSeed, uint256 taskSeed, uint256 roundSeed) external {
        uint256 h = _h(roundSeed, "claim");
        uint256 t = _task(taskSeed);
        uint32 r = uint32(1 + (h >> 8) % fed.task(t).currentRound);
        uint8 v = uint8((h >> 16) % VARIANTS);
        if (h % 4 != 0 && finalized.length != 0) {
            Finalized memory f = finalized[(h >> 24) % finalized.length];
            (t, r, v) = (f.taskId, f.round, f.variant);
        }
        uint256 fi = finalizedIndex[t][r];
        bool tamper = (h >> 32) % 8 == 0;
        uint256 i = _h(actorSeed, "claimer") % accounts.length;
        address who = accounts[i];
        uint256 score = scoreOf(t, r, v, i) + (tamper ? 1 : 0);
        bytes32[] memory path = Fixtures.proof(_leaves(t, r, v), i);
        if (!_call(who, abi.encodeCall(fed.claimContribution, (t, r, score, path)))) return;
        if (fi == 0) _violate(creditViolation, "credit granted for a round that did not finalize");
        else if (finalized[fi - 1].variant != v || tamper) _violate(creditViolation, "credit granted for a score the quorum did not agree");
        claimedTotal[who] += score;
        claims += 1;
    }

    /// @dev Mostly a proposal that can execute (admit a non-member institution, remove a member).
    function propose(uint256 actorSeed, uint256 targetSeed) external {
        uint256 h = _h(targetSeed, "propose");
        address target = accounts[h % INSTITUTIONS];
        uint8 kind = fed.isMember(target) ? 1 : 0;
        if ((h >> 8) % 4 == 0) kind = 1 - kind;
        _call(_actor(actorSeed, 0, 0, 0), abi.encodeCall(fed.propose, (kind, target, Fixtures.peerIdOf(target), bytes32(0), bytes32(0))));
    }

    function approve(uint256 actorSeed, uint256 proposalSeed) external {
        uint256 count = fed.proposalCount();
        if (count == 0) return;
        uint256 h = _h(proposalSeed, "approve");
        uint256 pid = h % 4 == 0 ? 1 + (h >> 8) % count : count;
        uint32 before = fed.memberCount();
        bool wasExecuted = fed.proposal(pid).executed;
        if (!_call(_actor(actorSeed, pid, 0, 3), abi.encodeCall(fed.approve, (pid)))) return;
        if (!wasExecuted && fed.proposal(pid).executed) {
            membershipChanges += 1;
            if (fed.memberCount() == before) _violate(governanceViolation, "an executed proposal changed no membership");
        }
    }

    /// @dev Rarely acts (a new task spreads the other actions thinner).  Quorums 1..4 against
    ///      1..6 members: some are not a strict majority and must be refused.
    function createTask(uint256 actorSeed, uint32 quorum, uint32 numRounds) external {
        if (tasks.length >= MAX_TASKS || _h(actorSeed, "create") % 4 != 0) return;
        uint32 q = 1 + quorum % 4;
        uint32 members = fed.memberCount();
        bytes memory data = abi.encodeCall(
            fed.createTask,
            (
                Fixtures.cid(keccak256("spec")),
                Fixtures.cid(keccak256("model 0")),
                q,
                Fixtures.ROUND_SECONDS,
                Fixtures.ATTEST_SECONDS,
                1 + numRounds % 4,
                Fixtures.MAX_SAMPLES / 2
            )
        );
        bool ok = _call(_actor(actorSeed, 0, 0, 0), data);
        if (ok && 2 * q <= members) _violate(quorumViolation, "a task was created with a minority quorum");
        if (ok) {
            uint256 t = fed.taskCount();
            tasks.push(t);
            _trackRound(t, 1);
        }
    }

    function warp(uint256 secondsSeed) external {
        VM.warp(block.timestamp + 1 + secondsSeed % 120);
    }

    // ------------------------------------------------------------------ deterministic round data

    /// @return the score account `i` has in pair `variant` of round `round` (variant 0 is honest)
    function scoreOf(uint256 taskId, uint32 round, uint8 variant, uint256 i) public pure returns (uint256) {
        return 1 + uint256(keccak256(abi.encode(taskId, round, variant, i))) % 1000;
    }

    function scoresRoot(uint256 taskId, uint32 round, uint8 variant) public view returns (bytes32) {
        return Fixtures.root(_leaves(taskId, round, variant));
    }

    function aggregateCid(uint256 taskId, uint32 round, uint8 variant) public pure returns (bytes memory) {
        return Fixtures.cid(keccak256(abi.encode("aggregate", taskId, round, variant)));
    }

    function _leaves(uint256 taskId, uint32 round, uint8 variant) private view returns (bytes32[] memory) {
        uint256[] memory scores = new uint256[](accounts.length);
        for (uint256 i = 0; i < scores.length; ++i) {
            scores[i] = scoreOf(taskId, round, variant, i);
        }
        return Fixtures.leaves(taskId, round, accounts, scores);
    }

    // ------------------------------------------------------------------ calling

    /// @dev Makes the call as `who` and checks what must hold for every call.
    function _call(address who, bytes memory data) private returns (bool ok) {
        calls += 1;
        bool member = fed.isMember(who);
        uint256[] memory creditBefore = _credits();
        if (!member) {
            nonMemberCalls += 1;
            VM.startStateDiffRecording();
        }
        VM.prank(who);
        (ok,) = address(fed).call(data);
        if (!member) _checkNoEffect(bytes4(data), VM.stopAndReturnStateDiff());
        uint256[] memory creditAfter = _credits();
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (creditAfter[i] < creditBefore[i]) _violate(creditViolation, "credit decreased");
            bool claimed = ok && accounts[i] == who && bytes4(data) == fed.claimContribution.selector;
            if (creditAfter[i] > creditBefore[i] && !claimed) _violate(creditViolation, "credit grew without a claim");
        }
        if (ok) succeeded += 1;
        _noteMembers();
    }

    /// @dev A non-member's call leaves storage as it was, with one exception the contract
    ///      documents: anyone may report dissent, which sets one flag from zero to one.
    function _checkNoEffect(bytes4 selector, Vm.AccountAccess[] memory accesses) private {
        uint256 writes = 0;
        bool flagOnly = true;
        for (uint256 i = 0; i < accesses.length; ++i) {
            if (accesses[i].account != address(fed) || accesses[i].reverted) continue;
            Vm.StorageAccess[] memory slots = accesses[i].storageAccesses;
            for (uint256 j = 0; j < slots.length; ++j) {
                Vm.StorageAccess memory s = slots[j];
                if (!s.isWrite || s.reverted || s.previousValue == s.newValue) continue;
                writes += 1;
                if (s.previousValue != bytes32(0) || s.newValue != bytes32(uint256(1))) flagOnly = false;
            }
        }
        if (writes == 0) return;
        if (selector == fed.reportDissent.selector && writes == 1 && flagOnly) return;
        _violate(nonMemberViolation, string.concat("a non-member's call changed storage: ", VM.toString(abi.encodePacked(selector))));
    }

    function _credits() private view returns (uint256[] memory out) {
        out = new uint256[](accounts.length);
        for (uint256 i = 0; i < accounts.length; ++i) {
            out[i] = fed.creditOf(accounts[i]);
        }
    }

    /// @dev Remembers who was a member while each tracked round was open, for the bound on
    ///      attestations.
    function _noteMembers() private {
        uint256 mask = 0;
        for (uint256 i = 0; i < accounts.length; ++i) {
            if (fed.isMember(accounts[i])) mask |= 1 << i;
        }
        for (uint256 k = 0; k < tasks.length; ++k) {
            uint256 t = tasks[k];
            uint32 r = fed.task(t).currentRound;
            membersDuringRound[t][r] |= mask;
            uint32 last = fed.task(t).lastFinalizedRound;
            if (last != 0) membersDuringRound[t][last] |= mask;
        }
    }

    function _trackRound(uint256 t, uint32 r) private {
        _roundKeysTask.push(t);
        _roundKeysRound.push(r);
        Federation.RoundInfo memory info = fed.roundInfo(t, r);
        eligibleAtOpen[t][r] = info.eligible;
        // A task's last round stays "open" after it finalizes; only a round just opened is checked.
        if (info.status != Federation.RoundStatus.Collecting) return;
        if (info.eligible != fed.memberCount()) _violate(quorumViolation, "a round opened with another count than the members");
        if (2 * uint256(info.need) <= info.eligible || info.need > info.eligible) {
            _violate(quorumViolation, "a round opened needing no strict majority, or more than its eligible members");
        }
    }

    function _violate(string storage slot, string memory what) private {
        bytes storage b = bytes(slot);
        if (b.length != 0) return;
        bytes memory w = bytes(what);
        for (uint256 i = 0; i < w.length; ++i) {
            b.push(w[i]);
        }
    }

    /// @dev Mostly a member able to make progress (kind 1: has not submitted round `r` of task
    ///      `t`; kind 2: has not attested it; kind 3: has not approved proposal `t`); one call
    ///      in four, any account, member or not.
    function _actor(uint256 actorSeed, uint256 t, uint32 r, uint8 kind) private view returns (address) {
        uint256 n = accounts.length;
        uint256 seed = _h(actorSeed, "actor");
        if (seed % 4 == 0) return accounts[(seed >> 8) % n];
        seed >>= 8;
        for (uint256 k = 0; k < INSTITUTIONS; ++k) {
            address a = accounts[(seed + k) % INSTITUTIONS];
            if (!fed.isMember(a)) continue;
            if (kind == 1) {
                (, uint64 samples) = fed.submissionOf(t, r, a);
                if (samples != 0) continue;
            }
            if (kind == 2 && hasAttested[t][r][a]) continue;
            if (kind == 3 && fed.hasApproved(t, a)) continue;
            return a;
        }
        return accounts[seed % n];
    }

    function _task(uint256 seed) private view returns (uint256) {
        return tasks[_h(seed, "task") % tasks.length];
    }

    /// @dev Spreads a fuzzer input evenly: forge favours small and repeated values, which would
    ///      otherwise pick the same branch nearly every time.
    function _h(uint256 seed, string memory salt) private pure returns (uint256) {
        return uint256(keccak256(abi.encode(seed, salt)));
    }
}
