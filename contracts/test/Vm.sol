// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Vm
/// @notice The few forge cheatcodes fedchain's Solidity tests use, declared here so the suite
///         needs no forge-std download (the audit runs offline).  Only the fields of a struct
///         up to the last one a test reads are declared: ABI decoding of a prefix of a tuple is
///         exact, so newer forge versions that append fields still decode.
interface Vm {
    enum AccountAccessKind {
        Call,
        DelegateCall,
        CallCode,
        StaticCall,
        Create,
        SelfDestruct,
        Resume,
        Balance,
        Extcodesize,
        Extcodehash,
        Extcodecopy
    }

    struct ChainInfo {
        uint256 forkId;
        uint256 chainId;
    }

    struct StorageAccess {
        address account;
        bytes32 slot;
        bool isWrite;
        bytes32 previousValue;
        bytes32 newValue;
        bool reverted;
    }

    struct AccountAccess {
        ChainInfo chainInfo;
        AccountAccessKind kind;
        address account;
        address accessor;
        bool initialized;
        uint256 oldBalance;
        uint256 newBalance;
        bytes deployedCode;
        uint256 value;
        bytes data;
        bool reverted;
        StorageAccess[] storageAccesses;
    }

    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    // caller and environment
    function prank(address msgSender) external;
    function warp(uint256 newTimestamp) external;
    function assume(bool condition) external pure;

    // state snapshots and recording
    function snapshotState() external returns (uint256 snapshotId);
    function revertToState(uint256 snapshotId) external returns (bool success);
    function startStateDiffRecording() external;
    function stopAndReturnStateDiff() external returns (AccountAccess[] memory accesses);
    function recordLogs() external;
    function getRecordedLogs() external returns (Log[] memory logs);

    // expectations and assertions
    function expectRevert(bytes calldata revertData) external;
    function assertEq(uint256 left, uint256 right, string calldata message) external pure;
    function assertEq(bytes32 left, bytes32 right, string calldata message) external pure;
    function assertEq(address left, address right, string calldata message) external pure;
    function assertEq(bool left, bool right, string calldata message) external pure;
    function assertEq(string calldata left, string calldata right, string calldata message) external pure;
    function assertTrue(bool condition, string calldata message) external pure;
    function assertFalse(bool condition, string calldata message) external pure;
    function assertLe(uint256 left, uint256 right, string calldata message) external pure;
    function assertGe(uint256 left, uint256 right, string calldata message) external pure;
    function assertGt(uint256 left, uint256 right, string calldata message) external pure;

    // files and environment (paths are limited by fs_permissions in foundry.toml)
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
    function writeFile(string calldata path, string calldata data) external;
    function writeLine(string calldata path, string calldata data) external;

    // formatting
    function toString(uint256 value) external pure returns (string memory);
    function toString(address value) external pure returns (string memory);
    function toString(bytes calldata value) external pure returns (string memory);
    function toString(bytes32 value) external pure returns (string memory);
}

/// @dev The cheatcode contract's fixed address: the last 20 bytes of keccak256("hevm cheat code").
Vm constant VM = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));
