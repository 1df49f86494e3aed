"""Part 3: forge fuzz and invariant tests (``contracts/test/``), and what they exercised.

The invariant handler writes, after each run, how many calls it made and how many
rounds finalized, claims succeeded and so on (``afterInvariant``); the part fails
when those show the invariants were never put to work (no finalized round, no
claim, no call from a non-member), because a property that was never exercised
proves nothing.  The same run writes the raw access-control matrix.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

from fedchain.audit.abc import AuditPart
from fedchain.audit.forge import ForgeTest, parse_test_results, run_forge
from fedchain.audit.types import AuditSettings, PartResult, Progress
from fedchain.errors import ToolchainError

MATRIX_FILE = "access-matrix.json"
STATS_FILE = "invariant-stats.jsonl"
GAS_SUITE = "GasScenarioTest"
MUST_EXERCISE = ("rounds_finalized", "claims", "non_member_calls", "dissents", "above_cap_refused")


def forge_env(out_dir: Path) -> dict[str, str]:
    """Where the suite writes the matrix and the invariant statistics."""
    return {
        "FEDCHAIN_ACCESS_MATRIX": str(out_dir / MATRIX_FILE),
        "FEDCHAIN_INVARIANT_STATS": str(out_dir / STATS_FILE),
    }


def read_stats(path: Path) -> dict[str, int]:
    """Invariant statistics summed over every run (empty if none were written)."""
    totals: dict[str, int] = {}
    if not path.is_file():
        return totals
    for line in path.read_text().splitlines():
        if line.strip():
            for key, value in json.loads(line).items():
                totals[key] = totals.get(key, 0) + int(value)
    totals["runs"] = sum(1 for line in path.read_text().splitlines() if line.strip())
    return totals


def render(tests: Sequence[ForgeTest], stats: dict[str, int], profile: str) -> str:
    lines = [
        f"forge profile `{profile}` (`foundry.toml`); suites in `contracts/test/`.",
        "",
        "| suite | test | kind | runs | handler calls | result |",
        "|---|---|---|---|---|---|",
    ]
    for t in tests:
        result = "pass" if t.passed else f"**FAIL**: {t.reason} {t.counterexample}".strip()
        calls = str(t.calls) if t.kind == "invariant" else ""
        lines.append(f"| {t.suite} | `{t.name}` | {t.kind} | {t.runs} | {calls} | {result} |")
    if stats:
        lines += [
            "",
            "What the invariant runs exercised (summed over all runs):",
            "",
            "| " + " | ".join(k.replace("_", " ") for k in stats) + " |",
            "|" + "---|" * len(stats),
            "| " + " | ".join(str(v) for v in stats.values()) + " |",
        ]
    return "\n".join(lines)


class ForgeTests(AuditPart):
    key = "forge"
    title = "Forge fuzz and invariant tests"

    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        started = time.monotonic()
        profile = "fast" if settings.fast else "default"
        settings.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (MATRIX_FILE, STATS_FILE):
            (settings.out_dir / name).unlink(missing_ok=True)
        progress(f"forge test (profile {profile}): fuzz, invariants, access-control matrix")
        done = run_forge(
            settings.repo,
            ["test", "--json", "--no-match-contract", GAS_SUITE],
            profile=profile,
            env=forge_env(settings.out_dir),
        )
        (settings.out_dir / "forge-test.json").write_text(done.stdout)
        (settings.out_dir / "forge-test.log").write_text(done.stderr)
        try:
            tests = parse_test_results(done.stdout)
        except ToolchainError as exc:
            raise ToolchainError(
                f"forge test (exit {done.returncode}) gave no results: "
                f"{(done.stderr or done.stdout)[-3000:]}"
            ) from exc
        for t in tests:
            verdict = "pass" if t.passed else "FAIL"
            progress(f"{verdict} {t.suite}.{t.name} ({t.kind}, {t.runs} runs)")
        stats = read_stats(settings.out_dir / STATS_FILE)
        idle = [k for k in MUST_EXERCISE if stats.get(k, 0) == 0]
        failed = [t for t in tests if not t.passed]
        kinds = {t.kind for t in tests}
        problems = [f"{len(failed)} failed"] if failed else []
        if idle:
            problems.append("invariant runs never exercised: " + ", ".join(idle))
        if not {"fuzz", "invariant"} <= kinds:
            problems.append("no fuzz or no invariant test ran")
        if done.returncode != 0 and not failed:
            problems.append(f"forge exited {done.returncode}: {done.stderr[-300:]}")
        body = render(tests, stats, profile)
        if problems:
            body += "\n\nProblems: " + "; ".join(problems)
        counts = ", ".join(f"{sum(1 for t in tests if t.kind == k)} {k}" for k in sorted(kinds))
        return PartResult(
            key=self.key,
            title=self.title,
            passed=not problems,
            summary=f"{len(tests) - len(failed)}/{len(tests)} passed ({counts})"
            + (f"; {'; '.join(problems)}" if problems else ""),
            markdown=body,
            seconds=time.monotonic() - started,
        )
