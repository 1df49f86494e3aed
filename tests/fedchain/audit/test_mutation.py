"""The suite must catch a broken contract: with the membership check removed from `propose`,
the non-member invariant and the access-control matrix test have to fail (real forge, on a
copy of the contracts)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from fedchain.audit.forge import parse_test_results, run_forge
from tests.fedchain.audit.conftest import REPO

FOUNDRY_TOML = """[profile.fast]
src = "contracts"
test = "contracts/test"
out = "out"
libs = []
solc = "{solc}"
offline = true
evm_version = "shanghai"
optimizer = true
optimizer_runs = 200
fs_permissions = [{{ access = "read-write", path = "./audit/out" }}]

[profile.fast.fuzz]
runs = 32
seed = "0xfed"
failure_persist_dir = "out/fuzz-failures"

[profile.fast.invariant]
runs = 16
depth = 32
fail_on_revert = false
failure_persist_dir = "out/invariant-failures"
"""


def _without_member_check_in_propose(source: str) -> str:
    match = re.search(r"function propose\(.*?\n    }\n", source, flags=re.S)
    if match is None or "_requireMember(msg.sender);" not in match.group(0):
        pytest.fail("Federation.propose no longer starts with _requireMember: update this test")
    body = match.group(0).replace("_requireMember(msg.sender);", "", 1)
    return source[: match.start()] + body + source[match.end() :]


def test_removing_a_membership_check_is_caught(tmp_path: Path) -> None:
    project = tmp_path / "mutant"
    shutil.copytree(REPO / "contracts", project / "contracts")
    federation = project / "contracts" / "Federation.sol"
    federation.write_text(_without_member_check_in_propose(federation.read_text()))
    (project / "audit" / "out").mkdir(parents=True)
    (project / "foundry.toml").write_text(FOUNDRY_TOML.format(solc=REPO / "scripts" / "solc"))
    done = run_forge(
        REPO,
        [
            "test",
            "--root",
            str(project),
            "--json",
            "--match-test",
            "invariant_nonMemberNeverChangesState|test_accessControlMatrix",
        ],
        profile="fast",
        cwd=project,
        env={
            "FEDCHAIN_ACCESS_MATRIX": str(project / "audit" / "out" / "m.json"),
            "FEDCHAIN_INVARIANT_STATS": str(project / "audit" / "out" / "s.jsonl"),
        },
    )
    results = {t.name: t for t in parse_test_results(done.stdout)}
    assert set(results) == {
        "invariant_nonMemberNeverChangesState()",
        "test_accessControlMatrix()",
    }, done.stderr[-2000:]
    assert not results["invariant_nonMemberNeverChangesState()"].passed
    assert "non-member" in results["invariant_nonMemberNeverChangesState()"].reason
    assert not results["test_accessControlMatrix()"].passed
