"""Runs the audit parts in order, reports progress, writes the report.

Each part runs even when an earlier one failed (except the matrix, which reads
what the forge part wrote), so one report shows every problem at once.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

from fedchain.audit.abc import AuditPart
from fedchain.audit.compile_check import CompileWarnings
from fedchain.audit.forge_tests import ForgeTests
from fedchain.audit.gas import GasReport
from fedchain.audit.matrix import AccessControlMatrix
from fedchain.audit.report import render_report, verdict
from fedchain.audit.slither import SlitherPart
from fedchain.audit.types import AuditSettings, PartResult, Progress
from fedchain.checkout import SOURCE_ROOT
from fedchain.errors import FedchainError

REPO_ROOT = SOURCE_ROOT
DEFAULT_REPORT = REPO_ROOT / "audit" / "report.md"
DEFAULT_OUT = REPO_ROOT / "audit" / "out"


def default_parts() -> list[AuditPart]:
    return [CompileWarnings(), SlitherPart(), ForgeTests(), GasReport(), AccessControlMatrix()]


def _console(line: str) -> None:
    print(line, file=sys.stdout, flush=True)


def run_parts(
    parts: Sequence[AuditPart], settings: AuditSettings, progress: Progress = _console
) -> list[PartResult]:
    """Run every part; a part that raises a FedchainError is recorded as failed."""
    results = []
    for number, part in enumerate(parts, start=1):
        progress(f"[{number}/{len(parts)}] {part.title} ...")
        started = time.monotonic()

        def step(line: str) -> None:
            progress(f"      {line}")

        try:
            result = part.run(settings, step)
        except FedchainError as exc:
            result = PartResult(
                part.key,
                part.title,
                False,
                f"could not run: {str(exc).splitlines()[0]}",
                f"The part could not run:\n\n```text\n{exc}\n```",
                time.monotonic() - started,
            )
        progress(
            f"[{number}/{len(parts)}] {part.title}: {verdict(result.passed)} "
            f"({result.seconds:.1f} s) {result.summary}"
        )
        results.append(result)
    return results


def run_audit(
    *,
    fast: bool = False,
    report: Path | None = None,
    out_dir: Path | None = None,
    parts: Sequence[AuditPart] | None = None,
    progress: Progress = _console,
) -> int:
    """Run the audit and write the report; return the process exit code (0: every part
    passed, 1: some part failed)."""
    settings = AuditSettings(repo=REPO_ROOT, out_dir=out_dir or DEFAULT_OUT, fast=fast)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    results = run_parts(parts if parts is not None else default_parts(), settings, progress)
    path = report or DEFAULT_REPORT
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(results, fast=fast), encoding="utf-8")
    passed = all(r.passed for r in results)
    progress(
        f"audit {verdict(passed)} in {time.monotonic() - started:.0f} s: "
        f"{sum(r.passed for r in results)}/{len(results)} parts passed; report: {path}"
    )
    return 0 if passed else 1
