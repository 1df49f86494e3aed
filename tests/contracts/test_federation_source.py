"""The compiled contract: no warnings, deployable size, documented, the interface peers use."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fedchain.contract_build import CONTRACTS_DIR, WRAPPER, federation_artifact
from peer.ledger.artifact import ARTIFACT_FILE, ContractArtifact, shipped_artifact

EIP170_LIMIT = 24_576
SPEC_ERRORS = {
    "NotMember(address)",
    "UnknownTask(uint256)",
    "WrongRound(uint32,uint32)",
    "RoundNotCollecting()",
    "SubmissionDeadlinePassed(uint64)",
    "AlreadySubmitted()",
    "ZeroSamples()",
    "InvalidCid()",
    "UpdatesNotClosed()",
    "DeadlineNotPassed()",
    "QuorumNotReached(uint32,uint32)",
    "AlreadyAttested()",
    "AttestDeadlinePassed()",
    "RoundAlreadyFinalized()",
    "RoundNotFinalized()",
    "InvalidProof()",
    "AlreadyClaimed()",
    "AlreadyApproved()",
    "UnknownProposal()",
    "ProposalClosed()",
    "AlreadyMember()",
    "InvalidConfig(string)",
    "SamplesAboveCap(uint64,uint64)",
    "QuorumNotMajority(uint32,uint32)",
    "EpsilonDecreased(uint32,uint32)",
    "ZeroEncryptionKey()",
    "EncryptionKeyTaken(bytes32)",
}
SPEC_FUNCTIONS = {
    "isMember(address)",
    "memberCount()",
    "peerIdOf(address)",
    "memberByPeerId(string)",
    "members()",
    "encryptionKeyOf(address)",
    "setEncryptionKey(bytes32)",
    "auditKey()",
    "propose(uint8,address,string,bytes32,bytes32)",
    "approve(uint256)",
    "createTask(bytes,bytes,uint32,uint64,uint64,uint32,uint64)",
    "task(uint256)",
    "roundInfo(uint256,uint32)",
    "submitUpdate(uint256,uint32,bytes,uint64,uint32)",
    "privacySpentOf(uint256,address)",
    "submissionOf(uint256,uint32,address)",
    "closeUpdates(uint256,uint32)",
    "attestAggregate(uint256,uint32,bytes,bytes32)",
    "reportDissent(uint256,uint32,address)",
    "dissentReported(uint256,uint32,address)",
    "failRound(uint256,uint32)",
    "claimContribution(uint256,uint32,uint256,bytes32[])",
    "contributionOf(address)",
    "creditOf(address)",
}


def _signatures(artifact: ContractArtifact, kind: str) -> set[str]:
    return {
        f"{e['name']}({','.join(i['type'] for i in e.get('inputs', []))})"
        for e in artifact.abi
        if e["type"] == kind
    }


@pytest.fixture(scope="module")
def artifact() -> ContractArtifact:
    return federation_artifact()


def test_compiles_without_warnings(artifact: ContractArtifact) -> None:
    assert artifact.warnings == (), "\n".join(artifact.warnings)
    assert artifact.compiler.startswith("0.8.37+commit.")


def test_fits_the_contract_size_limit(artifact: ContractArtifact) -> None:
    assert len(artifact.deployed_bytecode) // 2 - 1 < EIP170_LIMIT
    assert "5f" in artifact.deployed_bytecode  # PUSH0: compiled for shanghai, not an older EVM


def test_exposes_the_spec_interface(artifact: ContractArtifact) -> None:
    assert _signatures(artifact, "function") >= SPEC_FUNCTIONS
    assert _signatures(artifact, "error") >= SPEC_ERRORS
    events = {e["name"] for e in artifact.abi if e["type"] == "event"}
    assert {
        "ProposalCreated",
        "ProposalApproved",
        "MemberAdmitted",
        "MemberRemoved",
        "TaskCreated",
        "RoundOpened",
        "UpdateSubmitted",
        "UpdatesClosed",
        "AggregateAttested",
        "RoundFinalized",
        "RoundFailed",
        "TaskCompleted",
        "DissentRecorded",
        "ContributionClaimed",
    } <= events
    assert not any(e.get("stateMutability") == "payable" for e in artifact.abi), (
        "nothing takes ether"
    )


def test_every_external_function_is_documented() -> None:
    out = subprocess.run(
        [
            str(WRAPPER),
            "Federation.sol",
            "--combined-json",
            "abi,userdoc",
            "--evm-version",
            "shanghai",
        ],
        cwd=CONTRACTS_DIR,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    contract = json.loads(out.stdout)["contracts"]["Federation.sol:Federation"]
    documented = {sig.split("(")[0] for sig in contract["userdoc"]["methods"]}
    functions = {e["name"] for e in contract["abi"] if e["type"] == "function"}
    assert functions - documented == set()


def test_shipped_artifact_matches_the_sources(artifact: ContractArtifact) -> None:
    """Peers read the packaged artifact; it must be what ``contracts/`` compiles to today."""
    shipped = shipped_artifact()
    stale = "is stale; run `fedchain build-contract` and commit it"
    assert shipped.source_hash == artifact.source_hash, f"{ARTIFACT_FILE} {stale}"
    assert shipped.abi == artifact.abi, f"{ARTIFACT_FILE} {stale}"
    assert shipped.bytecode == artifact.bytecode, f"{ARTIFACT_FILE} {stale}"
    assert shipped.deployed_bytecode == artifact.deployed_bytecode, f"{ARTIFACT_FILE} {stale}"


def test_a_peer_does_not_need_the_compiler() -> None:
    """Importing and constructing the client side never loads the contract build tools."""
    code = (
        "import sys; import peer.ledger.client, peer.startup, peer.node; "
        "from peer.ledger.artifact import shipped_artifact; shipped_artifact(); "
        "bad = [m for m in ('solcx', 'fedchain.contract_build') if m in sys.modules]; "
        "sys.exit(f'peer imported {bad}' if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr + done.stdout
