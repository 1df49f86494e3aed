"""The runner: every part runs, failures are reported, the exit code and report follow."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from fedchain.audit.abc import AuditPart
from fedchain.audit.runner import run_audit
from fedchain.audit.types import AuditSettings, PartResult, Progress
from fedchain.cli import app
from fedchain.errors import ToolchainError


class Passing(AuditPart):
    key = "ok"
    title = "Always passes"

    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        progress("doing the work")
        return PartResult(self.key, self.title, True, "fine", "all good")


class Broken(AuditPart):
    key = "broken"
    title = "Tool missing"

    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        raise ToolchainError("forge is not installed at node_modules/.bin/forge")


def test_a_failing_part_fails_the_audit_but_the_others_still_run(tmp_path: Path) -> None:
    lines: list[str] = []
    report = tmp_path / "report.md"
    code = run_audit(
        parts=[Broken(), Passing()], report=report, out_dir=tmp_path / "out", progress=lines.append
    )
    assert code == 1
    text = report.read_text()
    assert "Overall: **FAIL**" in text
    assert "| Tool missing | **FAIL** | could not run: forge is not installed" in text
    assert "## Always passes: PASS" in text
    assert "[2/2] Always passes ..." in lines
    assert "      doing the work" in lines


def test_all_parts_passing_exit_zero(tmp_path: Path) -> None:
    report = tmp_path / "report.md"
    assert (
        run_audit(parts=[Passing()], report=report, out_dir=tmp_path, progress=lambda _l: None) == 0
    )
    assert "Overall: **PASS**" in report.read_text()


def test_the_cli_has_an_audit_command() -> None:
    result = CliRunner().invoke(app, ["audit", "--help"])
    assert result.exit_code == 0
    assert "--fast" in result.output
