"""Part 2: Slither, from its own virtual environment, with a disposition for every finding.

Slither 0.11.6 pins web3<8 while fedchain runs web3 8, so it lives in
``.venv-audit/``, created on first use from ``audit/requirements.txt`` (every
package pinned) and re-created when that file changes.  It compiles through the
project's solc wrapper with the settings peers deploy with.

Every high or medium finding must be matched by an entry of
``audit/slither-dispositions.toml`` that names the detector, the function and the
exact flagged expressions, and says why the finding is fixed, accepted or a false
positive.  A new finding, or an old one that now flags a different expression,
has no disposition and fails the part until someone looks at it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedchain import contract_build as compiler
from fedchain.audit.abc import AuditPart
from fedchain.audit.types import AuditSettings, PartResult, Progress
from fedchain.errors import ConfigError, ToolchainError

VENV_DIR = ".venv-audit"
REQUIREMENTS = Path("audit") / "requirements.txt"
DISPOSITIONS = Path("audit") / "slither-dispositions.toml"
TARGET = Path("contracts") / "Federation.sol"
STAMP = ".fedchain-audit-installed"
SEVERITIES = ("High", "Medium", "Low", "Informational", "Optimization")
MUST_EXPLAIN = frozenset({"High", "Medium"})
INSTALL_TIMEOUT_S = 900
RUN_TIMEOUT_S = 600


@dataclass(frozen=True)
class Finding:
    """One Slither result, reduced to what identifies it across edits of the source."""

    check: str
    impact: str
    confidence: str
    function: str
    """``Contract.signature`` of the function the finding is in ("" if none)."""
    expressions: tuple[str, ...]
    """The flagged statements (or ``variable NAME``), as Slither prints them."""
    location: str
    description: str


@dataclass(frozen=True)
class Disposition:
    """Why a finding needs no (further) change; read from the dispositions file."""

    check: str
    function: str | None
    """None: every finding of ``check`` (allowed for low and informational ones only)."""
    expressions: tuple[str, ...] | None
    """None: any expression; else the finding's expressions must all be listed."""
    must_not_mention: tuple[str, ...]
    """Guard: the disposition does not apply if a flagged expression contains one of these."""
    verdict: str
    reason: str

    def covers(self, finding: Finding) -> bool:
        if finding.check != self.check:
            return False
        if self.function is None:
            if finding.impact in MUST_EXPLAIN:
                return False
        elif finding.function != self.function:
            return False
        if self.expressions is not None and not set(finding.expressions) <= set(self.expressions):
            return False
        return not any(word in e for e in finding.expressions for word in self.must_not_mention)


# ---------------------------------------------------------------------------- environment


def _requirements_digest(requirements: Path) -> str:
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def ensure_slither(repo: Path, progress: Progress) -> Path:
    """The ``slither`` executable of ``.venv-audit``, installing it first if needed."""
    requirements = repo / REQUIREMENTS
    if not requirements.is_file():
        raise ToolchainError(f"{requirements} is missing; restore it from git")
    venv = repo / VENV_DIR
    exe = venv / "bin" / "slither"
    stamp = venv / STAMP
    digest = _requirements_digest(requirements)
    if exe.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return exe
    progress(f"installing Slither into {VENV_DIR}/ from {REQUIREMENTS} (first run only)")
    python = venv / "bin" / "python"
    steps: list[list[str]] = []
    if not python.is_file():
        steps.append([sys.executable, "-m", "venv", str(venv)])
    steps.append(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
            str(requirements),
        ]
    )
    for cmd in steps:
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ToolchainError(f"could not set up {venv}: {exc}") from exc
        if done.returncode != 0:
            raise ToolchainError(
                f"setting up {venv} failed ({' '.join(cmd[:4])} ...):\n{done.stderr[-2000:]}\n"
                f"Delete {venv} and run the audit again; the package index must be reachable "
                "the first time."
            )
    if not exe.is_file():
        raise ToolchainError(f"{exe} is missing after installing {requirements}")
    stamp.write_text(digest + "\n")
    return exe


def slither_version(exe: Path) -> str:
    done = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unknown"


# ---------------------------------------------------------------------------- running


def run_slither(repo: Path, exe: Path, out_json: Path) -> list[Finding]:
    """Run Slither on the contracts through the project's solc; return its findings.

    The sources are copied to a scratch folder first: crytic-compile walks up from its
    working directory, finds the repository's foundry.toml and would then hand the
    build to forge with forge's settings instead of the solc wrapper.  Relative paths
    (``contracts/Federation.sol``) stay the same in the findings.
    """
    solc, _ = compiler.find_compiler()
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="fedchain-slither-") as scratch:
        staged = Path(scratch) / TARGET.parent
        staged.mkdir(parents=True)
        for source in sorted((repo / TARGET.parent).glob("*.sol")):
            shutil.copy2(source, staged / source.name)
        return _run_in(Path(scratch), exe, solc, out_json)


def _run_in(workdir: Path, exe: Path, solc: Path, out_json: Path) -> list[Finding]:
    cmd = [
        str(exe),
        str(TARGET),
        "--solc",
        str(solc),
        "--solc-args",
        f"--evm-version {compiler.EVM_VERSION} --optimize "
        f"--optimize-runs {compiler.OPTIMIZER_RUNS}",
        "--json",
        str(out_json.resolve()),
        "--fail-none",
        "--disable-color",
    ]
    env = {**os.environ, "PATH": f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        done = subprocess.run(
            cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolchainError(f"Slither did not run: {exc}") from exc
    (out_json.parent / "slither.log").write_text(done.stdout + done.stderr)
    if not out_json.is_file():
        raise ToolchainError(
            f"Slither wrote no JSON (exit {done.returncode}):\n{done.stderr[-2000:]}"
        )
    data = json.loads(out_json.read_text())
    if not data.get("success"):
        raise ToolchainError(f"Slither failed: {data.get('error')}")
    return parse_findings(data)


def _function_of(element: dict[str, Any]) -> str:
    fields = element.get("type_specific_fields", {})
    if element.get("type") == "function":
        contract = fields.get("parent", {}).get("name", "")
        return f"{contract}.{fields.get('signature', element.get('name', ''))}"
    parent = fields.get("parent")
    return _function_of(parent) if isinstance(parent, dict) else ""


def parse_findings(data: dict[str, Any]) -> list[Finding]:
    """Findings from Slither's ``--json`` output."""
    findings = []
    for result in data.get("results", {}).get("detectors", []):
        elements = result.get("elements", [])
        function = next((f for f in map(_function_of, elements) if f), "")
        expressions = tuple(
            e["name"] if e.get("type") == "node" else f"{e.get('type')} {e.get('name')}"
            for e in elements
            if e.get("type") in ("node", "variable") and e.get("name")
        )
        findings.append(
            Finding(
                check=str(result["check"]),
                impact=str(result["impact"]),
                confidence=str(result["confidence"]),
                function=function,
                expressions=expressions,
                location=str(result.get("first_markdown_element", "")),
                description=" ".join(str(result.get("description", "")).split()),
            )
        )
    order = {s: i for i, s in enumerate(SEVERITIES)}
    return sorted(findings, key=lambda f: (order.get(f.impact, 99), f.check, f.function))


# ---------------------------------------------------------------------------- dispositions


def load_dispositions(path: Path) -> list[Disposition]:
    """Entries of the dispositions file; raises ConfigError naming a bad entry."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read Slither dispositions {path}: {exc}") from exc
    out = []
    for i, entry in enumerate(data.get("finding", []), start=1):
        missing = [k for k in ("check", "verdict", "reason") if not entry.get(k)]
        if missing:
            raise ConfigError(f"{path}: [[finding]] number {i} lacks {', '.join(missing)}")
        expressions = entry.get("expressions")
        out.append(
            Disposition(
                check=str(entry["check"]),
                function=str(entry["function"]) if entry.get("function") else None,
                expressions=tuple(map(str, expressions)) if expressions is not None else None,
                must_not_mention=tuple(map(str, entry.get("must_not_mention", ()))),
                verdict=str(entry["verdict"]),
                reason=" ".join(str(entry["reason"]).split()),
            )
        )
    return out


def assign(
    findings: Iterable[Finding], dispositions: Sequence[Disposition]
) -> list[tuple[Finding, Disposition | None]]:
    """Each finding with the first disposition that covers it (None: not explained)."""
    return [(f, next((d for d in dispositions if d.covers(f)), None)) for f in findings]


# ---------------------------------------------------------------------------- report


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def render(pairs: Sequence[tuple[Finding, Disposition | None]], unused: int) -> str:
    counts = {s: sum(1 for f, _ in pairs if f.impact == s) for s in SEVERITIES}
    lines = [
        "| severity | findings | explained |",
        "|---|---|---|",
        *(
            f"| {s} | {counts[s]} | {sum(1 for f, d in pairs if f.impact == s and d)} |"
            for s in SEVERITIES
        ),
        "",
    ]
    severe = [(f, d) for f, d in pairs if f.impact in MUST_EXPLAIN]
    if severe:
        lines += [
            "**High and medium findings** (each explained individually)",
            "",
            "| severity | detector | where | flagged | disposition | reason |",
            "|---|---|---|---|---|---|",
        ]
        for f, d in severe:
            flagged = "<br>".join(f"`{_md(e)}`" for e in f.expressions) or "—"
            verdict = f"**{d.verdict}**" if d else "**NOT EXPLAINED**"
            reason = _md(d.reason) if d else _md(f.description)
            where = f"`{f.function or '—'}` ({f.location})"
            lines.append(f"| {f.impact} | {f.check} | {where} | {flagged} | {verdict} | {reason} |")
        lines.append("")
    minor = [(f, d) for f, d in pairs if f.impact not in MUST_EXPLAIN]
    if minor:
        lines += [
            "**Low, informational and optimization findings** (grouped by detector)",
            "",
            "| severity | detector | findings | in | disposition | reason |",
            "|---|---|---|---|---|---|",
        ]
        groups: dict[tuple[str, str], list[tuple[Finding, Disposition | None]]] = {}
        for f, d in minor:
            groups.setdefault((f.impact, f.check), []).append((f, d))
        for (impact, check), members in groups.items():
            d = members[0][1]
            where = ", ".join(sorted({f"`{f.function}`" for f, _ in members if f.function}))
            verdict = f"**{d.verdict}**" if d else "not explained"
            reason = _md(d.reason) if d else _md(members[0][0].description)
            lines.append(
                f"| {impact} | {check} | {len(members)} | {where} | {verdict} | {reason} |"
            )
        lines.append("")
    if unused:
        lines.append(f"{unused} disposition(s) in `{DISPOSITIONS}` matched no finding (stale).")
    return "\n".join(lines).rstrip()


class SlitherPart(AuditPart):
    key = "slither"
    title = "Slither"

    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        started = time.monotonic()
        exe = ensure_slither(settings.repo, progress)
        version = slither_version(exe)
        progress(f"running Slither {version} on {TARGET}")
        findings = run_slither(settings.repo, exe, settings.out_dir / "slither.json")
        dispositions = load_dispositions(settings.repo / DISPOSITIONS)
        pairs = assign(findings, dispositions)
        unused = sum(1 for d in dispositions if not any(d.covers(f) for f in findings))
        open_ = [f for f, d in pairs if d is None and f.impact in MUST_EXPLAIN]
        for f in open_:
            progress(f"NOT EXPLAINED: {f.impact} {f.check} in {f.function} {f.expressions}")
        severe = sum(1 for f in findings if f.impact in MUST_EXPLAIN)
        header = (
            f"Slither {version} from `{VENV_DIR}/` (pinned by `{REQUIREMENTS}`), target "
            f"`{TARGET}` compiled by the project's solc (evmVersion {compiler.EVM_VERSION}); "
            f"dispositions in `{DISPOSITIONS}`.\n\n"
        )
        return PartResult(
            key=self.key,
            title=self.title,
            passed=not open_,
            summary=(
                f"{len(findings)} findings, {severe} high/medium, "
                f"{severe - len(open_)} of them explained"
            ),
            markdown=header + render(pairs, unused),
            seconds=time.monotonic() - started,
        )
