"""The Solidity fuzz and invariant suite, run by real forge (fast profile), and the matrix it
generates, named from the real ABI."""

from __future__ import annotations

import pytest

from fedchain.audit.forge_tests import MATRIX_FILE, STATS_FILE, read_stats
from fedchain.audit.gas import GasReport
from fedchain.audit.matrix import AccessMatrix, build_matrix, load_raw
from fedchain.audit.types import AuditSettings
from fedchain.contract_build import federation_artifact
from tests.fedchain.audit.conftest import ForgeRun

INVARIANTS = {
    "invariant_nonMemberNeverChangesState()",
    "invariant_finalizedRoundNeverChanges()",
    "invariant_attestationsNeverExceedMembers()",
    "invariant_creditOnlyGrowsFromFinalizedRounds()",
    "invariant_samplesNeverAboveTheCap()",
    "invariant_finalizationNeedsAStrictMajority()",
}
MUTATING = {
    "propose(uint8,address,string,bytes32,bytes32)",
    "approve(uint256)",
    "setEncryptionKey(bytes32)",
    "createTask(bytes,bytes,uint32,uint64,uint64,uint32,uint64)",
    "submitUpdate(uint256,uint32,bytes,uint64,uint32)",
    "closeUpdates(uint256,uint32)",
    "attestAggregate(uint256,uint32,bytes,bytes32)",
    "failRound(uint256,uint32)",
    "reportDissent(uint256,uint32,address)",
    "claimContribution(uint256,uint32,uint256,bytes32[])",
}


def test_every_forge_test_passes(forge_run: ForgeRun) -> None:
    assert forge_run.result.passed, forge_run.result.markdown
    for name in INVARIANTS:
        assert f"`{name}` | invariant |" in forge_run.result.markdown
    assert any(line.startswith("pass FederationFuzzTest.testFuzz_") for line in forge_run.progress)


def test_invariant_runs_exercise_rounds_claims_and_outsiders(forge_run: ForgeRun) -> None:
    stats = read_stats(forge_run.settings.out_dir / STATS_FILE)
    assert stats["runs"] > 0
    for key in (
        "rounds_finalized",
        "claims",
        "non_member_calls",
        "dissents",
        "rounds_failed",
        "above_cap_refused",
    ):
        assert stats[key] > 0, (key, stats)
    assert stats["succeeded"] < stats["calls"], "refused calls must be exercised too"


@pytest.fixture(scope="module")
def matrix(forge_run: ForgeRun) -> AccessMatrix:
    raw = load_raw(forge_run.settings.out_dir / MATRIX_FILE)
    return build_matrix(raw, federation_artifact().abi)


def test_matrix_covers_every_function_and_names_custom_errors(matrix: AccessMatrix) -> None:
    assert matrix.problems == ()
    abi_functions = {
        f"{f['name']}({','.join(i['type'] for i in f['inputs'])})"
        for f in federation_artifact().abi
        if f["type"] == "function"
    }
    assert set(matrix.functions) == abi_functions
    assert {c.function for c in matrix.cells if c.mutates} == MUTATING
    assert len(matrix.cells) == len(abi_functions) * len(matrix.roles)


def test_matrix_refusals_follow_the_membership_rules(matrix: AccessMatrix) -> None:
    for function in MUTATING - {"reportDissent(uint256,uint32,address)"}:
        for role in ("outsider", "removed member", "deployer (not a founder)"):
            cell = matrix.cell(function, role)
            assert cell is not None and (cell.allowed, cell.error) == (False, "NotMember"), cell
        member = matrix.cell(function, "member")
        assert member is not None and member.allowed
    for function in (
        "submitUpdate(uint256,uint32,bytes,uint64,uint32)",
        "attestAggregate(uint256,uint32,bytes,bytes32)",
    ):
        cell = matrix.cell(function, "member admitted mid-round")
        assert cell is not None and (cell.allowed, cell.error) == (False, "NotEligible")
    assert all(c.allowed for c in matrix.cells if not c.mutates)
    assert all(c.allowed for c in matrix.cells if c.function.startswith("reportDissent"))


def test_gas_report_meets_the_budget(forge_run: ForgeRun) -> None:
    settings = AuditSettings(repo=forge_run.settings.repo, out_dir=forge_run.settings.out_dir)
    result = GasReport().run(settings, lambda _line: None)
    assert result.passed, result.markdown
    assert "`submitUpdate(uint256,uint32,bytes,uint64,uint32)` |" in result.markdown
