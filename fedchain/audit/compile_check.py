"""Part 1: compile the contracts from scratch and show every compiler warning.

Goes through the project's own compiler module (the same settings peers deploy
with: solc 0.8.37, evmVersion shanghai, optimizer 200 runs) but never from its
cache, so the warnings are the compiler's answer today.  solc reports every
warning it knows by default; any warning or error fails the part.
"""

from __future__ import annotations

import time

from fedchain import contract_build as compiler
from fedchain.audit.abc import AuditPart
from fedchain.audit.types import AuditSettings, PartResult, Progress


class CompileWarnings(AuditPart):
    key = "compile"
    title = "Compiler warnings"

    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        started = time.monotonic()
        binary, version = compiler.find_compiler()
        progress(f"compiling {compiler.CONTRACTS_DIR.name}/*.sol with solc {version}")
        artifacts = compiler.compile_contracts(
            settings.repo / "contracts", settings.out_dir / "solc", force=True
        )
        warnings = next(iter(artifacts.values())).warnings if artifacts else ()
        for warning in warnings:
            progress(f"warning: {warning.splitlines()[0]}")
        lines = [
            f"- Compiler: `solc {version}` (`{binary.name}`), evmVersion `{compiler.EVM_VERSION}`, "
            f"optimizer {compiler.OPTIMIZER_RUNS} runs, fresh compile (no cache)",
            f"- Contracts: {', '.join(sorted(artifacts))}",
            f"- Warnings: {len(warnings)}",
        ]
        if warnings:
            lines += ["", "```text", *(w.rstrip() for w in warnings), "```"]
        return PartResult(
            key=self.key,
            title=self.title,
            passed=not warnings and bool(artifacts),
            summary=f"{len(artifacts)} contracts, {len(warnings)} warnings",
            markdown="\n".join(lines),
            seconds=time.monotonic() - started,
        )
