"""Running forge (npm ``@foundry-rs/forge-linux-amd64``) offline and reading its JSON.

``foundry.toml`` points forge at ``scripts/solc`` with ``offline = true``; the tests
in ``contracts/test/`` declare the cheatcodes they use, so nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedchain.errors import ToolchainError

FORGE = Path("node_modules") / ".bin" / "forge"
RUN_TIMEOUT_S = 1800


@dataclass(frozen=True)
class ForgeTest:
    """One test function's result."""

    suite: str
    """``Contract`` name of the test suite."""
    name: str
    kind: str
    """``unit``, ``fuzz`` or ``invariant``."""
    passed: bool
    runs: int
    calls: int
    """Handler calls (invariant tests only)."""
    reason: str
    counterexample: str


@dataclass(frozen=True)
class GasRow:
    """One function's line of forge's gas report."""

    contract: str
    function: str
    calls: int
    min: int
    mean: int
    median: int
    max: int


def forge_binary(repo: Path) -> Path:
    exe = repo / FORGE
    if not exe.exists():
        raise ToolchainError(
            f"forge is not installed at {exe}; run `make setup` (npm ci installs "
            "@foundry-rs/forge-linux-amd64)"
        )
    return exe


def run_forge(
    repo: Path,
    args: list[str],
    *,
    profile: str = "default",
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the repository's forge with ``FOUNDRY_PROFILE=profile``, in ``cwd`` (default: the
    repository, whose foundry.toml then applies)."""
    exe = forge_binary(repo)
    full_env = {**os.environ, "FOUNDRY_PROFILE": profile, "NO_COLOR": "1", **(env or {})}
    try:
        return subprocess.run(
            [str(exe), *args],
            cwd=cwd or repo,
            env=full_env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"forge {' '.join(args)} did not finish: {exc}") from exc


def _json_document(stdout: str) -> Any:
    """The JSON value forge printed (it may print compiler progress lines around it)."""
    text = stdout.strip()
    try:
        return json.loads(text)
    except ValueError:
        pass
    for line in text.splitlines():
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                return json.loads(line)
            except ValueError:
                continue
    raise ToolchainError(f"forge printed no JSON document:\n{text[-2000:]}")


def parse_test_results(stdout: str) -> list[ForgeTest]:
    """Results of ``forge test --json``."""
    doc = _json_document(stdout)
    if not isinstance(doc, dict):
        raise ToolchainError("forge test --json printed something other than an object")
    tests = []
    for suite_id, suite in sorted(doc.items()):
        suite_name = suite_id.rsplit(":", 1)[-1]
        for name, result in sorted(suite.get("test_results", {}).items()):
            kind_info = result.get("kind") or {}
            kind = next(iter(kind_info), "Unit").lower()
            details = kind_info.get(next(iter(kind_info), ""), {}) or {}
            example = result.get("counterexample")
            tests.append(
                ForgeTest(
                    suite=suite_name,
                    name=name,
                    kind=kind,
                    passed=result.get("status") == "Success",
                    runs=int(details.get("runs", 1 if kind == "unit" else 0)),
                    calls=int(details.get("calls", 0)),
                    reason=str(result.get("reason") or ""),
                    counterexample=json.dumps(example) if example else "",
                )
            )
    return tests


def parse_gas_report(stdout: str) -> list[GasRow]:
    """Rows of ``forge test --gas-report --json``."""
    doc = _json_document(stdout)
    if not isinstance(doc, list):
        raise ToolchainError("forge --gas-report --json printed something other than a list")
    rows = []
    for contract in doc:
        name = str(contract.get("contract", "")).rsplit(":", 1)[-1]
        for function, g in sorted(contract.get("functions", {}).items()):
            rows.append(
                GasRow(
                    contract=name,
                    function=function,
                    calls=int(g["calls"]),
                    min=int(g["min"]),
                    mean=int(g["mean"]),
                    median=int(g["median"]),
                    max=int(g["max"]),
                )
            )
    return rows
