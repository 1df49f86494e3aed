// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {CidBytes, ScoreProof} from "./FederationLib.sol";

/// @title Federation
/// @notice The memory and referee of one fedchain federation: who its members are, which training
///         tasks it runs, which updates each round collected, which aggregate a quorum agreed on,
///         and what each member contributed.  There is no owner: after deployment every change is
///         made by members, and membership itself changes only by a vote of the members.
/// @dev Gas design.  Submitting and attesting must cost a small constant per member and round, so
///      the state a round touches lives in slots that are re-used from round to round (a re-used,
///      non-zero slot costs 5k gas to write instead of 22k for a fresh one):
///        - one packed `RoundState` slot per task holds the open round;
///        - one `Participation` record per (task, member) holds that member's latest submission and
///          latest attestation; `createTask` writes a placeholder into each record so that the
///          first round is as cheap as the later ones.
///      The permanent per-round storage is one slot: the agreed scores root, which claims need
///      forever.  Everything else about past rounds (each update's CID, the aggregate CID, the
///      deadlines) is in the events, which are the federation's history; `roundInfo` and
///      `submissionOf` report what storage still holds.
contract Federation {
    // ------------------------------------------------------------------ types

    enum RoundStatus {
        None,
        Collecting,
        Closed,
        Finalized,
        Failed
    }

    enum TaskStatus {
        None,
        Active,
        Completed
    }

    enum ProposalKind {
        Admit,
        Remove
    }

    /// @dev One storage slot per member.  `admittedSeq` orders admissions against round openings:
    ///      a member may take part in a round only if admitted before the round opened.
    struct Member {
        bool active;
        uint32 index;
        uint32 admittedSeq;
    }

    /// @dev One storage slot: member count and counters read together when a round opens.
    struct Globals {
        uint32 memberCount;
        uint32 membershipSeq;
        uint64 taskCount;
        uint64 proposalCount;
    }

    /// @dev One storage slot, fixed at task creation.
    struct TaskConfig {
        uint32 quorum;
        uint32 roundDuration;
        uint32 attestDuration;
        uint16 numRounds;
        uint64 maxSamples;
    }

    /// @dev One storage slot per task: the open (or last) round, re-used from round to round.
    struct RoundState {
        uint32 round;
        RoundStatus status;
        uint32 seqAtOpen;
        uint40 submitDeadline;
        uint32 attestWindow;
        uint16 eligible;
        uint16 need;
        uint16 submissions;
        uint16 leadVotes;
        uint32 lastFinalizedRound;
        uint16 finalizedRounds;
    }

    /// @dev Four slots per (task, member), re-used every round: the latest submission and the
    ///      latest attestation of that member in that task.  The attestation that finalizes a
    ///      round is by definition the agreed pair, so its digests are not stored again
    ///      (`finalizer` is set instead).
    struct Participation {
        bytes32 updateDigest;
        uint64 numSamples;
        uint32 submitRound;
        uint32 attestRound;
        bool primed;
        bool finalizer;
        uint32 updatesSubmitted;
        uint32 epsilonMilli;
        bytes32 voteAggregate;
        bytes32 voteScores;
    }

    struct Proposal {
        ProposalKind kind;
        address account;
        uint32 approvals;
        uint32 memberCountAtProposal;
        uint64 expiresAt;
        bool executed;
        address proposer;
        bytes32 metadataDigest;
        string peerId;
        bytes32 encryptionKey;
    }

    /// @notice What `task` returns.
    struct TaskView {
        bytes32 specDigest;
        uint32 quorum;
        uint64 roundDuration;
        uint64 attestDuration;
        uint32 numRounds;
        uint32 currentRound;
        uint32 lastFinalizedRound;
        uint32 finalizedRounds;
        bytes32 globalModelDigest;
        TaskStatus status;
        uint64 maxSamples;
    }

    /// @notice What `roundInfo` returns.  For the open round every field is set.  For a round that
    ///         ended, storage keeps its status and scores root (and the aggregate digest of the last
    ///         finalized round); the other fields are zero and are in that round's events.
    ///         `need` is the updates, and identical attestations, the round needs (see createTask).
    struct RoundInfo {
        RoundStatus status;
        bytes32 modelDigest;
        uint64 submitDeadline;
        uint64 attestDeadline;
        uint32 eligible;
        uint32 submissions;
        bytes32 aggregateDigest;
        bytes32 scoresDigest;
        uint32 need;
    }

    /// @notice What `proposal` returns.
    struct ProposalView {
        ProposalKind kind;
        address account;
        string peerId;
        bytes32 metadataDigest;
        address proposer;
        uint32 approvals;
        uint32 memberCountAtProposal;
        uint64 expiresAt;
        bool executed;
        bytes32 encryptionKey;
    }

    // ------------------------------------------------------------------ errors

    error NotMember(address account);
    error NotEligible(address account, uint32 round);
    error UnknownTask(uint256 taskId);
    error TaskFinished(uint256 taskId);
    error WrongRound(uint32 expected, uint32 given);
    error RoundNotCollecting();
    error SubmissionDeadlinePassed(uint64 deadline);
    error AlreadySubmitted();
    error ZeroSamples();
    error InvalidCid();
    error ZeroScoresDigest();
    error UpdatesNotClosed();
    error DeadlineNotPassed();
    error QuorumNotReached(uint32 have, uint32 need);
    error QuorumAlreadyReached(uint32 have, uint32 need);
    error AlreadyAttested();
    error AttestDeadlinePassed();
    error RoundAlreadyFinalized();
    error RoundNotFinalized();
    error NotAttested(address member);
    error NoDissent(address member);
    error DissentAlreadyReported(address member);
    error DissentWindowClosed(uint32 round);
    error InvalidProof();
    error AlreadyClaimed();
    error AlreadyApproved();
    error UnknownProposal();
    error ProposalClosed();
    error AlreadyMember();
    error PeerIdTaken();
    error InvalidConfig(string reason);
    error SamplesAboveCap(uint64 given, uint64 cap);
    error QuorumNotMajority(uint32 quorum, uint32 members);
    error EpsilonDecreased(uint32 given, uint32 recorded);
    error ZeroEncryptionKey();
    error EncryptionKeyTaken(bytes32 key);

    // ------------------------------------------------------------------ events

    event MemberAdmitted(address indexed account, string peerId, bytes32 metadataDigest, uint256 indexed proposalId);
    event MemberRemoved(address indexed account, uint256 indexed proposalId);
    /// @notice `account`'s X25519 public key for members-only weights, set at admission
    ///         (`proposalId` 0 for founders and for a member's own rotation).
    event EncryptionKeySet(address indexed account, bytes32 key, uint256 indexed proposalId);
    event ProposalCreated(
        uint256 indexed proposalId,
        address indexed proposer,
        ProposalKind kind,
        address indexed account,
        string peerId,
        bytes32 metadataDigest,
        uint64 expiresAt
    );
    event ProposalApproved(uint256 indexed proposalId, address indexed member, uint32 approvals);
    event TaskCreated(
        uint256 indexed taskId,
        address indexed creator,
        bytes32 specDigest,
        bytes specCid,
        bytes initialModelCid,
        uint32 quorum,
        uint64 roundDuration,
        uint64 attestDuration,
        uint32 numRounds,
        uint64 maxSamples
    );
    event RoundOpened(
        uint256 indexed taskId,
        uint32 indexed round,
        bytes32 modelDigest,
        uint64 submitDeadline,
        uint64 attestDeadline,
        uint32 eligible
    );
    event UpdateSubmitted(
        uint256 indexed taskId,
        uint32 indexed round,
        address indexed member,
        bytes32 digest,
        bytes cid,
        uint64 numSamples,
        uint32 index
    );
    event UpdatesClosed(uint256 indexed taskId, uint32 indexed round, uint32 submissions);
    event AggregateAttested(
        uint256 indexed taskId, uint32 indexed round, address indexed member, bytes32 aggregateDigest, bytes32 scoresDigest
    );
    event RoundFinalized(
        uint256 indexed taskId,
        uint32 indexed round,
        bytes32 aggregateDigest,
        bytes aggregateCid,
        bytes32 scoresDigest,
        uint32 attestations
    );
    event RoundFailed(uint256 indexed taskId, uint32 indexed round, RoundStatus statusBefore, uint32 submissions);
    event TaskCompleted(uint256 indexed taskId, uint32 lastRound, uint32 finalizedRounds);
    event DissentRecorded(
        uint256 indexed taskId, uint32 indexed round, address indexed member, bytes32 aggregateDigest, bytes32 scoresDigest
    );
    event ContributionClaimed(uint256 indexed taskId, uint32 indexed round, address indexed member, uint256 score);

    // ------------------------------------------------------------------ constants and storage

    /// @notice Seconds a governance proposal stays open for approvals.
    uint64 public constant PROPOSAL_TTL = 7 days;
    /// @notice Most members a federation can hold (round counters are 16-bit).
    uint32 public constant MAX_MEMBERS = type(uint16).max;
    uint256 private constant MAX_PEER_ID_BYTES = 128;
    uint256 private constant BPS = 10_000;
    /// @dev Non-zero filler written by `createTask` so the first real write of a slot is cheap.
    bytes32 private constant PLACEHOLDER = bytes32(uint256(1));

    /// @notice Share of the members at proposal time, in basis points, whose approval executes a proposal.
    uint16 public immutable approvalBps;
    /// @notice The federation's audit X25519 public key, fixed at deployment (zero: a federation
    ///         without members-only weights).  Every members-only object is sealed to it as well,
    ///         so an auditor holding its secret key can recompute every aggregate.
    bytes32 public immutable auditKey;

    Globals private _g;
    address[] private _memberList;
    mapping(address => Member) private _members;
    mapping(address => string) private _peerIds;
    mapping(bytes32 => address) private _byPeerId;
    mapping(address => bytes32) private _encryptionKeys;
    mapping(bytes32 => address) private _byEncryptionKey;

    mapping(uint256 => Proposal) private _proposals;
    mapping(uint256 => mapping(address => bool)) private _approvedBy;

    mapping(uint256 => TaskConfig) private _config;
    mapping(uint256 => RoundState) private _state;
    mapping(uint256 => bytes32) private _specDigest;
    mapping(uint256 => bytes32) private _model;
    mapping(uint256 => bytes32) private _leadPair;
    mapping(uint256 => mapping(uint32 => mapping(bytes32 => uint16))) private _otherVotes;
    mapping(uint256 => mapping(uint32 => bytes32)) private _scoresRoot;
    mapping(uint256 => mapping(address => Participation)) private _part;
    mapping(uint256 => mapping(uint32 => mapping(address => bool))) private _dissentReported;
    mapping(uint256 => mapping(address => mapping(uint256 => uint256))) private _claimedBits;

    /// @dev Cumulative contribution and credit of each account, in one slot.
    struct Ledger {
        uint128 contribution;
        uint128 credit;
    }

    mapping(address => Ledger) private _ledger;

    // ------------------------------------------------------------------ construction

    /// @notice Deploys a federation with its founding members.  Callable once, by anyone; the
    ///         deployer gets no power over the contract.
    /// @param founders founding members' addresses (non-zero, distinct)
    /// @param peerIds  their libp2p peer IDs, same order (non-empty, distinct, at most 128 bytes)
    /// @param encryptionKeys their X25519 public keys, same order, or empty for a federation
    ///        without members-only weights; with `auditKey_` non-zero every member needs one
    ///        (non-zero, else ZeroEncryptionKey; distinct, else EncryptionKeyTaken)
    /// @param auditKey_ the federation's audit X25519 public key (zero: no members-only weights)
    /// @param approvalBps_ share of current members (basis points, 1..10000) needed to execute a proposal
    constructor(
        address[] memory founders,
        string[] memory peerIds,
        bytes32[] memory encryptionKeys,
        bytes32 auditKey_,
        uint16 approvalBps_
    ) {
        if (approvalBps_ == 0 || approvalBps_ > BPS) revert InvalidConfig("approvalBps must be in 1..10000");
        if (founders.length == 0) revert InvalidConfig("at least one founder is needed");
        if (founders.length != peerIds.length) revert InvalidConfig("founders and peerIds differ in length");
        if (encryptionKeys.length != 0 && encryptionKeys.length != founders.length) {
            revert InvalidConfig("founders and encryptionKeys differ in length");
        }
        if (founders.length > MAX_MEMBERS) revert InvalidConfig("too many founders");
        approvalBps = approvalBps_;
        auditKey = auditKey_;
        bool keyed = encryptionKeys.length != 0;
        for (uint256 i = 0; i < founders.length; ++i) {
            bytes32 key = keyed ? encryptionKeys[i] : bytes32(0);
            _checkAdmissible(founders[i], peerIds[i]);
            _checkEncryptionKey(key, auditKey_ != bytes32(0));
            _admit(founders[i], peerIds[i], bytes32(0), 0);
            _setEncryptionKey(founders[i], key, 0);
        }
    }

    // ------------------------------------------------------------------ membership reads

    /// @notice Whether `account` is a current member.  Anyone, any time.
    function isMember(address account) external view returns (bool) {
        return _members[account].active;
    }

    /// @notice Number of current members.  Anyone, any time.
    function memberCount() external view returns (uint32) {
        return _g.memberCount;
    }

    /// @notice libp2p peer ID registered for `account` ("" for a non-member).  Anyone, any time.
    function peerIdOf(address account) external view returns (string memory) {
        return _peerIds[account];
    }

    /// @notice X25519 public key registered for `account` (zero for a non-member or a member
    ///         without one).  Anyone, any time.
    function encryptionKeyOf(address account) external view returns (bytes32) {
        return _encryptionKeys[account];
    }

    /// @notice Replaces the caller's X25519 public key (a rotation; rounds opened afterwards seal
    ///         to the new key).  Callable by a current member; the key must be non-zero
    ///         (ZeroEncryptionKey) and not held by another member (EncryptionKeyTaken).
    function setEncryptionKey(bytes32 key) external {
        _requireMember(msg.sender);
        _checkEncryptionKey(key, true);
        delete _byEncryptionKey[_encryptionKeys[msg.sender]];
        _setEncryptionKey(msg.sender, key, 0);
    }

    /// @notice Member registered under `peerId` (zero address if none).  Anyone, any time.
    function memberByPeerId(string calldata peerId) external view returns (address) {
        return _byPeerId[keccak256(bytes(peerId))];
    }

    /// @notice Current members, in no particular order (removal moves the last one into the gap).
    function members() external view returns (address[] memory) {
        return _memberList;
    }

    /// @notice Number of tasks created so far (task ids are 1..taskCount).
    function taskCount() external view returns (uint64) {
        return _g.taskCount;
    }

    /// @notice Number of proposals made so far (proposal ids are 1..proposalCount).
    function proposalCount() external view returns (uint64) {
        return _g.proposalCount;
    }

    // ------------------------------------------------------------------ governance

    /// @notice Proposes to admit (kind 0) or remove (kind 1) an institution; the proposer's
    ///         approval is counted at once.  Callable by any current member while the proposal
    ///         makes sense: admit a non-member under an unused peer ID, remove a member other than
    ///         the last one.
    /// @param kind 0 = Admit, 1 = Remove
    /// @param account the institution's address
    /// @param peerId its libp2p peer ID (Admit only; ignored for Remove)
    /// @param metadataDigest sha2-256 digest of the institution's metadata document (or zero)
    /// @param encryptionKey its X25519 public key (Admit only; required when the federation has an
    ///        audit key, else ZeroEncryptionKey; not another member's, else EncryptionKeyTaken)
    /// @return proposalId the new proposal's id (from 1)
    function propose(
        uint8 kind,
        address account,
        string calldata peerId,
        bytes32 metadataDigest,
        bytes32 encryptionKey
    ) external returns (uint256 proposalId) {
        _requireMember(msg.sender);
        if (kind > uint8(ProposalKind.Remove)) revert InvalidConfig("proposal kind must be 0 (admit) or 1 (remove)");
        ProposalKind k = ProposalKind(kind);
        if (k == ProposalKind.Admit) {
            _checkAdmissible(account, peerId);
            _checkEncryptionKey(encryptionKey, auditKey != bytes32(0));
        } else {
            _checkRemovable(account);
        }
        Globals storage g = _g;
        proposalId = ++g.proposalCount;
        uint64 expiresAt = uint64(block.timestamp) + PROPOSAL_TTL;
        Proposal storage p = _proposals[proposalId];
        p.kind = k;
        p.account = account;
        p.memberCountAtProposal = g.memberCount;
        p.expiresAt = expiresAt;
        p.proposer = msg.sender;
        p.metadataDigest = metadataDigest;
        if (k == ProposalKind.Admit) {
            p.peerId = peerId;
            if (encryptionKey != bytes32(0)) p.encryptionKey = encryptionKey;
        }
        emit ProposalCreated(proposalId, msg.sender, k, account, p.peerId, metadataDigest, expiresAt);
        _approve(proposalId, p);
    }

    /// @notice Approves an open proposal.  Callable by any current member, once per proposal,
    ///         until it has executed or expired.  The approval that reaches
    ///         approvals * 10000 >= approvalBps * (members when proposed) executes it.
    function approve(uint256 proposalId) external {
        _requireMember(msg.sender);
        Proposal storage p = _proposals[proposalId];
        if (p.expiresAt == 0) revert UnknownProposal();
        if (p.executed || block.timestamp > p.expiresAt) revert ProposalClosed();
        if (_approvedBy[proposalId][msg.sender]) revert AlreadyApproved();
        _approve(proposalId, p);
    }

    /// @notice A proposal's content and tally.  Anyone, any time.
    function proposal(uint256 proposalId) external view returns (ProposalView memory v) {
        Proposal storage p = _proposals[proposalId];
        if (p.expiresAt == 0) revert UnknownProposal();
        v = ProposalView({
            kind: p.kind,
            account: p.account,
            peerId: p.peerId,
            metadataDigest: p.metadataDigest,
            proposer: p.proposer,
            approvals: p.approvals,
            memberCountAtProposal: p.memberCountAtProposal,
            expiresAt: p.expiresAt,
            executed: p.executed,
            encryptionKey: p.encryptionKey
        });
    }

    /// @notice Whether `member` approved proposal `proposalId`.  Anyone, any time.
    function hasApproved(uint256 proposalId, address member) external view returns (bool) {
        return _approvedBy[proposalId][member];
    }

    // ------------------------------------------------------------------ tasks

    /// @notice Creates a training task and opens its round 1 from the initial model.  Callable by
    ///         any current member.  Costs about 110k gas per current member (it prepares each
    ///         member's per-task record so that rounds stay cheap).
    /// @param specCid binary CIDv1 of the task spec (model, hyper-parameters, aggregation rule)
    /// @param initialModelCid binary CIDv1 of the initial global model
    /// @param quorum updates, and identical attestations, a round needs: a strict majority of
    ///        the current members (2 * quorum > memberCount, else QuorumNotMajority), so that no
    ///        minority can finalize a round.  Each round needs max(quorum, eligible / 2 + 1),
    ///        capped at `eligible` (the members when the round opened), so the rule keeps holding
    ///        when members are admitted or removed while the task runs.
    /// @param roundDuration seconds a round collects updates (1 .. 2^32-1)
    /// @param attestDuration seconds after the submission deadline for attestations (1 .. 2^32-1)
    /// @param numRounds rounds to finalize before the task completes (1 .. 65535)
    /// @param maxSamples most training samples one update may claim (1 .. 2^64-1); it bounds
    ///        every FedAvg weight and contribution score derived from sample counts
    /// @return taskId the new task's id (from 1)
    function createTask(
        bytes calldata specCid,
        bytes calldata initialModelCid,
        uint32 quorum,
        uint64 roundDuration,
        uint64 attestDuration,
        uint32 numRounds,
        uint64 maxSamples
    ) external returns (uint256 taskId) {
        _requireMember(msg.sender);
        bytes32 specDigest = _digestOrRevert(specCid);
        bytes32 modelDigest = _digestOrRevert(initialModelCid);
        TaskConfig memory c = _taskConfig(quorum, roundDuration, attestDuration, numRounds, maxSamples);
        taskId = ++_g.taskCount;
        _config[taskId] = c;
        _specDigest[taskId] = specDigest;
        _model[taskId] = modelDigest;
        _leadPair[taskId] = PLACEHOLDER;
        _primeAll(taskId);
        _emitTaskCreated(taskId, specDigest, specCid, initialModelCid, c);
        RoundState memory s;
        _openRound(taskId, s, c, 1, modelDigest);
    }

    /// @notice A task's configuration and progress.  Anyone, any time; reverts UnknownTask.
    function task(uint256 taskId) external view returns (TaskView memory v) {
        RoundState memory s = _loadState(taskId);
        TaskConfig memory c = _config[taskId];
        v = TaskView({
            specDigest: _specDigest[taskId],
            quorum: c.quorum,
            roundDuration: c.roundDuration,
            attestDuration: c.attestDuration,
            numRounds: c.numRounds,
            currentRound: s.round,
            lastFinalizedRound: s.lastFinalizedRound,
            finalizedRounds: s.finalizedRounds,
            globalModelDigest: _model[taskId],
            status: s.finalizedRounds >= c.numRounds ? TaskStatus.Completed : TaskStatus.Active,
            maxSamples: c.maxSamples
        });
    }

    // ------------------------------------------------------------------ rounds

    /// @notice Records this member's update for the open round.  Callable by a member admitted
    ///         before the round opened, once per round, while the round is collecting and
    ///         block.timestamp <= submitDeadline.  The submission that makes every eligible member
    ///         have submitted closes the update set in the same transaction.
    /// @param updateCid binary CIDv1 (raw or dag-pb, sha2-256) of the update; only its digest is stored
    /// @param numSamples training samples behind the update (1 .. the task's maxSamples, else
    ///        ZeroSamples / SamplesAboveCap); the FedAvg weight
    /// @param epsilonMilli differential privacy: the epsilon this member has spent in the task
    ///        once this update is out, in thousandths, rounded up (0 without DP); never below the
    ///        member's previous figure in the task (else EpsilonDecreased)
    function submitUpdate(
        uint256 taskId,
        uint32 round,
        bytes calldata updateCid,
        uint64 numSamples,
        uint32 epsilonMilli
    ) external {
        RoundState memory s = _loadState(taskId);
        Member memory m = _members[msg.sender];
        if (!m.active) revert NotMember(msg.sender);
        _requireOpenRound(taskId, s, round);
        if (s.status != RoundStatus.Collecting) revert RoundNotCollecting();
        if (m.admittedSeq > s.seqAtOpen) revert NotEligible(msg.sender, round);
        if (block.timestamp > s.submitDeadline) revert SubmissionDeadlinePassed(s.submitDeadline);
        Participation storage p = _part[taskId][msg.sender];
        if (p.submitRound == round) revert AlreadySubmitted();
        if (numSamples == 0) revert ZeroSamples();
        uint64 cap = _config[taskId].maxSamples;
        if (numSamples > cap) revert SamplesAboveCap(numSamples, cap);
        if (epsilonMilli < p.epsilonMilli) revert EpsilonDecreased(epsilonMilli, p.epsilonMilli);
        (bool ok, bytes32 digest) = CidBytes.digestOf(updateCid);
        if (!ok) revert InvalidCid();

        p.updateDigest = digest;
        p.numSamples = numSamples;
        p.submitRound = round;
        p.updatesSubmitted += 1;
        p.epsilonMilli = epsilonMilli;
        uint16 index = s.submissions;
        s.submissions = index + 1;
        emit UpdateSubmitted(taskId, round, msg.sender, digest, updateCid, numSamples, index);
        if (s.submissions == s.eligible) {
            s.status = RoundStatus.Closed;
            emit UpdatesClosed(taskId, round, s.submissions);
        }
        _state[taskId] = s;
    }

    /// @notice Closes the update set of the open round after its submission deadline.  Callable
    ///         by any current member when block.timestamp > submitDeadline and at least the
    ///         round's need (see `createTask`: a strict majority of the eligible members) has
    ///         submitted.
    function closeUpdates(uint256 taskId, uint32 round) external {
        RoundState memory s = _loadState(taskId);
        _requireMember(msg.sender);
        _requireOpenRound(taskId, s, round);
        if (s.status != RoundStatus.Collecting) revert RoundNotCollecting();
        if (block.timestamp <= s.submitDeadline) revert DeadlineNotPassed();
        if (s.submissions < s.need) revert QuorumNotReached(s.submissions, s.need);
        s.status = RoundStatus.Closed;
        _state[taskId] = s;
        emit UpdatesClosed(taskId, round, s.submissions);
    }

    /// @notice Attests the aggregate this member computed from the closed update set, and the
    ///         root of the contribution scores it computed with it.  Callable by a member admitted
    ///         before the round opened, once per round, while the round is closed and
    ///         block.timestamp <= attestDeadline; the attestation that gives one (aggregate, scores)
    ///         pair the round's need (more than half the eligible members) finalizes the round and
    ///         opens the next one (or completes the task).  After finalization any current member may still attest the last
    ///         finalized round once: a disagreeing late attestation is recorded as dissent.
    /// @param aggregateCid binary CIDv1 of the aggregate model
    /// @param scoresDigest Merkle root of the round's scores (non-zero); see ScoreProof
    function attestAggregate(uint256 taskId, uint32 round, bytes calldata aggregateCid, bytes32 scoresDigest)
        external
    {
        RoundState memory s = _loadState(taskId);
        Member memory m = _members[msg.sender];
        if (!m.active) revert NotMember(msg.sender);
        (bool ok, bytes32 agg) = CidBytes.digestOf(aggregateCid);
        if (!ok) revert InvalidCid();
        if (scoresDigest == bytes32(0)) revert ZeroScoresDigest();
        Participation storage p = _part[taskId][msg.sender];

        if (round == s.round && s.status != RoundStatus.Finalized) {
            if (s.status != RoundStatus.Closed) revert UpdatesNotClosed();
            if (m.admittedSeq > s.seqAtOpen) revert NotEligible(msg.sender, round);
            if (block.timestamp > uint256(s.submitDeadline) + s.attestWindow) revert AttestDeadlinePassed();
            if (p.attestRound == round) revert AlreadyAttested();
            emit AggregateAttested(taskId, round, msg.sender, agg, scoresDigest);

            bytes32 pair = keccak256(abi.encode(agg, scoresDigest));
            uint16 votes;
            bool lead = true;
            if (s.leadVotes == 0) {
                _leadPair[taskId] = pair;
                votes = s.leadVotes = 1;
            } else if (_leadPair[taskId] == pair) {
                votes = ++s.leadVotes;
            } else {
                votes = ++_otherVotes[taskId][round][pair];
                lead = false;
            }
            p.attestRound = round;
            if (votes >= s.need) {
                p.finalizer = true;
                _finalize(taskId, s, agg, aggregateCid, scoresDigest, votes);
                return;
            }
            p.finalizer = false;
            p.voteAggregate = agg;
            p.voteScores = scoresDigest;
            if (lead) _state[taskId] = s;
            return;
        }
        if (round != 0 && round == s.lastFinalizedRound) {
            if (p.attestRound >= round) revert AlreadyAttested();
            p.attestRound = round;
            p.finalizer = false;
            p.voteAggregate = agg;
            p.voteScores = scoresDigest;
            emit AggregateAttested(taskId, round, msg.sender, agg, scoresDigest);
            if (agg != _model[taskId] || scoresDigest != _scoresRoot[taskId][round]) {
                _dissentReported[taskId][round][msg.sender] = true;
                emit DissentRecorded(taskId, round, msg.sender, agg, scoresDigest);
            }
            return;
        }
        if (round != 0 && round < s.round && _scoresRoot[taskId][round] != bytes32(0)) revert RoundAlreadyFinalized();
        revert WrongRound(s.round, round);
    }

    /// @notice Marks the open round failed and opens the next one from the last finalized model.
    ///         Callable by any current member when the round is collecting, past its submission
    ///         deadline and short of the round's need, or when it is not finalized and past its
    ///         attestation deadline.
    function failRound(uint256 taskId, uint32 round) external {
        RoundState memory s = _loadState(taskId);
        _requireMember(msg.sender);
        if (round != s.round) revert WrongRound(s.round, round);
        RoundStatus before = s.status;
        if (before == RoundStatus.Finalized) revert RoundAlreadyFinalized();
        if (block.timestamp <= s.submitDeadline) revert DeadlineNotPassed();
        bool pastAttest = block.timestamp > uint256(s.submitDeadline) + s.attestWindow;
        if (!pastAttest) {
            if (before != RoundStatus.Collecting) revert DeadlineNotPassed();
            if (s.submissions >= s.need) revert QuorumAlreadyReached(s.submissions, s.need);
        }
        emit RoundFailed(taskId, round, before, s.submissions);
        _openRound(taskId, s, _config[taskId], round + 1, _model[taskId]);
    }

    /// @notice Records that `member`'s attestation of round `round` disagreed with the pair the
    ///         round finalized with.  Callable by anyone, once per (round, member), for the task's
    ///         last finalized round and until `member` attests again in this task (storage keeps
    ///         only each member's latest attestation; report right after finalization).
    function reportDissent(uint256 taskId, uint32 round, address member) external {
        RoundState memory s = _loadState(taskId);
        if (round == 0 || round != s.lastFinalizedRound) {
            if (round != 0 && round < s.round && _scoresRoot[taskId][round] != bytes32(0)) {
                revert DissentWindowClosed(round);
            }
            revert RoundNotFinalized();
        }
        Participation storage p = _part[taskId][member];
        uint32 attested = p.attestRound;
        if (attested != round) {
            if (attested > round) revert DissentWindowClosed(round);
            revert NotAttested(member);
        }
        if (p.finalizer) revert NoDissent(member);
        bytes32 voteAgg = p.voteAggregate;
        bytes32 voteScores = p.voteScores;
        if (voteAgg == _model[taskId] && voteScores == _scoresRoot[taskId][round]) revert NoDissent(member);
        if (_dissentReported[taskId][round][member]) revert DissentAlreadyReported(member);
        _dissentReported[taskId][round][member] = true;
        emit DissentRecorded(taskId, round, member, voteAgg, voteScores);
    }

    /// @notice Whether dissent of `member` in `round` of `taskId` is on record (by
    ///         `reportDissent` or a disagreeing late attestation), so a reporter can skip a call
    ///         that would revert DissentAlreadyReported.  Anyone, any time.
    function dissentReported(uint256 taskId, uint32 round, address member) external view returns (bool) {
        return _dissentReported[taskId][round][member];
    }

    /// @notice A round's status and what storage holds about it (see RoundInfo).  Anyone, any
    ///         time; a round not opened yet reads as status None.  Reverts UnknownTask.
    function roundInfo(uint256 taskId, uint32 round) external view returns (RoundInfo memory info) {
        RoundState memory s = _loadState(taskId);
        if (round == 0 || round > s.round) return info;
        if (round == s.round) {
            info.status = s.status;
            info.submitDeadline = s.submitDeadline;
            info.attestDeadline = uint64(s.submitDeadline) + s.attestWindow;
            info.eligible = s.eligible;
            info.submissions = s.submissions;
            info.need = s.need;
            if (s.status == RoundStatus.Finalized) {
                info.aggregateDigest = _model[taskId];
                info.scoresDigest = _scoresRoot[taskId][round];
            } else {
                info.modelDigest = _model[taskId];
            }
            return info;
        }
        bytes32 root = _scoresRoot[taskId][round];
        if (root == bytes32(0)) {
            info.status = RoundStatus.Failed;
        } else {
            info.status = RoundStatus.Finalized;
            info.scoresDigest = root;
            if (round == s.lastFinalizedRound) info.aggregateDigest = _model[taskId];
        }
    }

    /// @notice `member`'s update digest and sample count for `round`, if it is the member's latest
    ///         submission in this task (always so for the open round); zeros otherwise.
    function submissionOf(uint256 taskId, uint32 round, address member)
        external
        view
        returns (bytes32 digest, uint64 numSamples)
    {
        Participation storage p = _part[taskId][member];
        if (round == 0 || p.submitRound != round) return (bytes32(0), 0);
        return (p.updateDigest, p.numSamples);
    }

    /// @notice How many updates `member` has submitted in the task, and the epsilon (thousandths)
    ///         it committed with the latest: what differential privacy has cost it so far.
    function privacySpentOf(uint256 taskId, address member)
        external
        view
        returns (uint32 updates, uint32 epsilonMilli)
    {
        Participation storage p = _part[taskId][member];
        return (p.updatesSubmitted, p.epsilonMilli);
    }

    /// @notice `member`'s attested (aggregate, scores) digests for `round`, if it is the member's
    ///         latest attestation in this task; zeros otherwise (and a zero aggregate digest for
    ///         the finalizing attestation of a round older than the last finalized one).
    function attestationOf(uint256 taskId, uint32 round, address member)
        external
        view
        returns (bytes32 aggregateDigest, bytes32 scoresDigest)
    {
        Participation storage p = _part[taskId][member];
        if (round == 0 || p.attestRound != round) return (bytes32(0), bytes32(0));
        if (!p.finalizer) return (p.voteAggregate, p.voteScores);
        bytes32 agg = round == _state[taskId].lastFinalizedRound ? _model[taskId] : bytes32(0);
        return (agg, _scoresRoot[taskId][round]);
    }

    // ------------------------------------------------------------------ contributions

    /// @notice Claims this member's agreed score for a finalized round: its cumulative
    ///         contribution and its credit both grow by `score`.  Callable by a current member,
    ///         once per (task, round), with a Merkle proof of the leaf
    ///         keccak256(bytes.concat(keccak256(abi.encode(taskId, round, msg.sender, score))))
    ///         under the round's agreed scores root.
    function claimContribution(uint256 taskId, uint32 round, uint256 score, bytes32[] calldata proof) external {
        _loadState(taskId);
        _requireMember(msg.sender);
        bytes32 root = _scoresRoot[taskId][round];
        if (root == bytes32(0)) revert RoundNotFinalized();
        mapping(uint256 => uint256) storage bits = _claimedBits[taskId][msg.sender];
        uint256 word = round >> 8;
        uint256 bit = uint256(1) << (round & 0xff);
        uint256 current = bits[word];
        if (current & bit != 0) revert AlreadyClaimed();
        if (!ScoreProof.verify(proof, root, ScoreProof.leaf(taskId, round, msg.sender, score))) revert InvalidProof();
        if (score > type(uint128).max) revert InvalidConfig("score exceeds 2^128");
        // forge-lint: disable-next-line(unsafe-typecast) -- checked just above
        uint128 amount = uint128(score);
        bits[word] = current | bit;
        Ledger storage l = _ledger[msg.sender];
        l.contribution += amount;
        l.credit += amount;
        emit ContributionClaimed(taskId, round, msg.sender, score);
    }

    /// @notice Sum of the scores `account` has claimed from finalized rounds.  Anyone, any time.
    function contributionOf(address account) external view returns (uint256) {
        return _ledger[account].contribution;
    }

    /// @notice Non-transferable credit `account` holds: it grows only by claims on finalized
    ///         rounds, and no function moves it.  Anyone, any time.
    function creditOf(address account) external view returns (uint256) {
        return _ledger[account].credit;
    }

    /// @notice Whether `member` has claimed its score for `round` of `taskId`.  Anyone, any time.
    function hasClaimed(uint256 taskId, uint32 round, address member) external view returns (bool) {
        return _claimedBits[taskId][member][round >> 8] & (uint256(1) << (round & 0xff)) != 0;
    }

    // ------------------------------------------------------------------ internals

    function _requireMember(address account) private view {
        if (!_members[account].active) revert NotMember(account);
    }

    function _loadState(uint256 taskId) private view returns (RoundState memory s) {
        s = _state[taskId];
        if (s.round == 0) revert UnknownTask(taskId);
    }

    /// @dev `round` must be the open round of a task that is still running.
    function _requireOpenRound(uint256 taskId, RoundState memory s, uint32 round) private pure {
        if (s.status == RoundStatus.Finalized) revert TaskFinished(taskId);
        if (round != s.round) revert WrongRound(s.round, round);
    }

    function _checkAdmissible(address account, string memory peerId) private view {
        if (account == address(0)) revert InvalidConfig("member address is zero");
        if (_members[account].active) revert AlreadyMember();
        uint256 len = bytes(peerId).length;
        if (len == 0 || len > MAX_PEER_ID_BYTES) revert InvalidConfig("peer ID must be 1..128 bytes");
        if (_byPeerId[keccak256(bytes(peerId))] != address(0)) revert PeerIdTaken();
        if (_g.memberCount >= MAX_MEMBERS) revert InvalidConfig("federation is full");
    }

    /// @dev A key being registered: non-zero when `required`, and not held by another member.
    function _checkEncryptionKey(bytes32 key, bool required) private view {
        if (key == bytes32(0)) {
            if (required) revert ZeroEncryptionKey();
            return;
        }
        if (_byEncryptionKey[key] != address(0)) revert EncryptionKeyTaken(key);
    }

    function _setEncryptionKey(address account, bytes32 key, uint256 proposalId) private {
        if (key == bytes32(0)) return;
        _encryptionKeys[account] = key;
        _byEncryptionKey[key] = account;
        emit EncryptionKeySet(account, key, proposalId);
    }

    function _checkRemovable(address account) private view {
        if (!_members[account].active) revert NotMember(account);
        if (_g.memberCount <= 1) revert InvalidConfig("cannot remove the last member");
    }

    function _approve(uint256 proposalId, Proposal storage p) private {
        _approvedBy[proposalId][msg.sender] = true;
        uint32 approvals = p.approvals + 1;
        p.approvals = approvals;
        emit ProposalApproved(proposalId, msg.sender, approvals);
        if (uint256(approvals) * BPS < uint256(approvalBps) * p.memberCountAtProposal) return;
        p.executed = true;
        if (p.kind == ProposalKind.Admit) {
            string memory peerId = p.peerId;
            bytes32 key = p.encryptionKey;
            _checkAdmissible(p.account, peerId);
            _checkEncryptionKey(key, auditKey != bytes32(0));
            _admit(p.account, peerId, p.metadataDigest, proposalId);
            _setEncryptionKey(p.account, key, proposalId);
        } else {
            _checkRemovable(p.account);
            _remove(p.account, proposalId);
        }
    }

    function _admit(address account, string memory peerId, bytes32 metadataDigest, uint256 proposalId) private {
        Globals storage g = _g;
        uint32 seq = g.membershipSeq + 1;
        g.membershipSeq = seq;
        g.memberCount += 1;
        _members[account] = Member({active: true, index: uint32(_memberList.length), admittedSeq: seq});
        _memberList.push(account);
        _peerIds[account] = peerId;
        _byPeerId[keccak256(bytes(peerId))] = account;
        emit MemberAdmitted(account, peerId, metadataDigest, proposalId);
    }

    function _remove(address account, uint256 proposalId) private {
        uint32 index = _members[account].index;
        uint256 lastIndex = _memberList.length - 1;
        if (index != lastIndex) {
            address last = _memberList[lastIndex];
            _memberList[index] = last;
            _members[last].index = index;
        }
        _memberList.pop();
        delete _members[account];
        delete _byPeerId[keccak256(bytes(_peerIds[account]))];
        delete _peerIds[account];
        delete _byEncryptionKey[_encryptionKeys[account]];
        delete _encryptionKeys[account];
        _g.memberCount -= 1;
        emit MemberRemoved(account, proposalId);
    }

    function _digestOrRevert(bytes calldata cid) private pure returns (bytes32 digest) {
        bool ok;
        (ok, digest) = CidBytes.digestOf(cid);
        if (!ok) revert InvalidCid();
    }

    function _taskConfig(
        uint32 quorum,
        uint64 roundDuration,
        uint64 attestDuration,
        uint32 numRounds,
        uint64 maxSamples
    ) private view returns (TaskConfig memory) {
        if (quorum == 0) revert InvalidConfig("quorum must be at least 1");
        uint32 count = _g.memberCount;
        if (2 * uint256(quorum) <= count) revert QuorumNotMajority(quorum, count);
        if (roundDuration == 0 || roundDuration > type(uint32).max) {
            revert InvalidConfig("roundDuration must be in 1..2^32-1 seconds");
        }
        if (attestDuration == 0 || attestDuration > type(uint32).max) {
            revert InvalidConfig("attestDuration must be in 1..2^32-1 seconds");
        }
        if (numRounds == 0 || numRounds > type(uint16).max) revert InvalidConfig("numRounds must be in 1..65535");
        if (maxSamples == 0) revert InvalidConfig("maxSamples must be at least 1");
        // The range checks above make these narrowing casts exact.
        return TaskConfig({
            quorum: quorum,
            // forge-lint: disable-next-line(unsafe-typecast)
            roundDuration: uint32(roundDuration),
            // forge-lint: disable-next-line(unsafe-typecast)
            attestDuration: uint32(attestDuration),
            // forge-lint: disable-next-line(unsafe-typecast)
            numRounds: uint16(numRounds),
            maxSamples: maxSamples
        });
    }

    function _primeAll(uint256 taskId) private {
        address[] storage list = _memberList;
        uint256 n = list.length;
        for (uint256 i = 0; i < n; ++i) {
            _prime(taskId, list[i]);
        }
    }

    /// @dev Fills a member's per-task record with non-zero placeholders (never read as data:
    ///      every read checks the round it belongs to).
    function _prime(uint256 taskId, address account) private {
        Participation storage p = _part[taskId][account];
        p.updateDigest = PLACEHOLDER;
        p.primed = true;
        p.voteAggregate = PLACEHOLDER;
        p.voteScores = PLACEHOLDER;
    }

    function _emitTaskCreated(
        uint256 taskId,
        bytes32 specDigest,
        bytes calldata specCid,
        bytes calldata initialModelCid,
        TaskConfig memory c
    ) private {
        emit TaskCreated(
            taskId,
            msg.sender,
            specDigest,
            specCid,
            initialModelCid,
            c.quorum,
            c.roundDuration,
            c.attestDuration,
            c.numRounds,
            c.maxSamples
        );
    }

    /// @dev Opens `round` for the members of this moment.  Its need (updates to close, identical
    ///      attestations to finalize) is max(quorum, eligible / 2 + 1) capped at `eligible`: a
    ///      strict majority of the eligible members however membership changed since the task was
    ///      created (eligible >= 1, so the majority itself never exceeds the cap).
    function _openRound(uint256 taskId, RoundState memory s, TaskConfig memory c, uint32 round, bytes32 model)
        private
    {
        Globals memory g = _g;
        uint40 submitDeadline = uint40(block.timestamp) + c.roundDuration;
        uint16 eligible = uint16(g.memberCount);
        s.round = round;
        s.status = RoundStatus.Collecting;
        s.seqAtOpen = g.membershipSeq;
        s.submitDeadline = submitDeadline;
        s.attestWindow = c.attestDuration;
        s.eligible = eligible;
        uint32 majority = uint32(eligible) / 2 + 1;
        uint32 need = c.quorum > majority ? c.quorum : majority;
        // forge-lint: disable-next-line(unsafe-typecast) -- need < eligible, a uint16, here
        s.need = need < eligible ? uint16(need) : eligible;
        s.submissions = 0;
        s.leadVotes = 0;
        _state[taskId] = s;
        emit RoundOpened(taskId, round, model, submitDeadline, uint64(submitDeadline) + c.attestDuration, eligible);
    }

    function _finalize(
        uint256 taskId,
        RoundState memory s,
        bytes32 agg,
        bytes calldata aggregateCid,
        bytes32 scoresDigest,
        uint16 votes
    ) private {
        _scoresRoot[taskId][s.round] = scoresDigest;
        _model[taskId] = agg;
        uint32 round = s.round;
        s.status = RoundStatus.Finalized;
        s.lastFinalizedRound = round;
        s.finalizedRounds += 1;
        emit RoundFinalized(taskId, round, agg, aggregateCid, scoresDigest, votes);
        TaskConfig memory c = _config[taskId];
        if (s.finalizedRounds >= c.numRounds) {
            _state[taskId] = s;
            emit TaskCompleted(taskId, round, s.finalizedRounds);
        } else {
            _openRound(taskId, s, c, round + 1, agg);
        }
    }
}
