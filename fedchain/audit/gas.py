"""Part 4: forge's gas report over complete rounds, checked against the ledger's budget.

``GasScenarioTest`` runs full rounds with 3 and 10 members; forge's ``--isolate``
mode executes each call as its own transaction, so the figures are transaction
gas (intrinsic and calldata cost included) and match receipts on Anvil.  The
budget (issue: submitUpdate <= 60k, attest <= 60k, the finalizing attestation
<= 40k more, per peer per round <= 130k) is checked on what the report can tell
apart: the most expensive submission, the most expensive attestation (a
finalizing one) against 60k + 40k, and mean submission + mean attestation per
peer per round.  ``scripts/bench/gas`` measures each kind exactly from receipts.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fedchain.audit.abc import AuditPart
from fedchain.audit.forge import GasRow, parse_gas_report, run_forge
from fedchain.audit.forge_tests import GAS_SUITE
from fedchain.audit.types import AuditSettings, PartResult, Progress

CONTRACT = "Federation"
SUBMIT = "submitUpdate(uint256,uint32,bytes,uint64,uint32)"
ATTEST = "attestAggregate(uint256,uint32,bytes,bytes32)"
BUDGET_SUBMIT = 60_000
BUDGET_ATTEST = 60_000
BUDGET_FINALIZE_EXTRA = 40_000
BUDGET_PER_PEER_ROUND = 130_000


def budget_checks(rows: Sequence[GasRow]) -> list[tuple[str, int, int]]:
    """(what, measured, limit) for each budget line the report can check."""
    by_name = {r.function: r for r in rows if r.contract == CONTRACT}
    submit, attest = by_name.get(SUBMIT), by_name.get(ATTEST)
    if submit is None or attest is None:
        return []
    return [
        ("submitUpdate, most expensive", submit.max, BUDGET_SUBMIT),
        (
            "attestAggregate, most expensive (finalizing)",
            attest.max,
            BUDGET_ATTEST + BUDGET_FINALIZE_EXTRA,
        ),
        (
            "per peer per round (mean submit + mean attest)",
            submit.mean + attest.mean,
            BUDGET_PER_PEER_ROUND,
        ),
    ]


def render(rows: Sequence[GasRow], checks: Sequence[tuple[str, int, int]]) -> str:
    lines = [
        f"`forge test --match-contract {GAS_SUITE} --gas-report --isolate` (transaction gas; "
        "rounds with 3 and 10 members).",
        "",
        "| function | calls | min | median | mean | max |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| `{r.function}` | {r.calls} | {r.min:,} | {r.median:,} | {r.mean:,} | {r.max:,} |"
        for r in rows
        if r.contract == CONTRACT
    ]
    lines += ["", "| budget line | measured | limit | |", "|---|---|---|---|"]
    lines += [
        f"| {what} | {got:,} | {limit:,} | {'ok' if got <= limit else '**over**'} |"
        for what, got, limit in checks
    ]
    return "\n".join(lines)


class GasReport(AuditPart):
    key = "gas"
    title = "Gas report"

    def run(self, settings: AuditSettings, progress: Progress) -> PartResult:
        started = time.monotonic()
        progress(f"forge gas report over {GAS_SUITE}")
        done = run_forge(
            settings.repo,
            ["test", "--match-contract", GAS_SUITE, "--gas-report", "--isolate", "--json"],
        )
        settings.out_dir.mkdir(parents=True, exist_ok=True)
        (settings.out_dir / "forge-gas.json").write_text(done.stdout)
        rows = parse_gas_report(done.stdout) if done.returncode == 0 else []
        checks = budget_checks(rows)
        over = [c for c in checks if c[1] > c[2]]
        for what, got, limit in checks:
            progress(f"{what}: {got:,} (limit {limit:,})")
        problems = []
        if done.returncode != 0:
            problems.append(f"forge exited {done.returncode}: {done.stderr[-300:]}")
        if not checks:
            problems.append(f"the report lacks {SUBMIT} or {ATTEST}")
        problems += [f"{what} over budget" for what, _, _ in over]
        body = render(rows, checks)
        if problems:
            body += "\n\nProblems: " + "; ".join(problems)
        return PartResult(
            key=self.key,
            title=self.title,
            passed=not problems,
            summary=f"{sum(1 for r in rows if r.contract == CONTRACT)} functions measured, "
            f"{len(checks) - len(over)}/{len(checks)} budget lines met",
            markdown=body,
            seconds=time.monotonic() - started,
        )
