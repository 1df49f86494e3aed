#!/usr/bin/env python3
"""Gas per call and per peer per round of the Federation contract, for 3, 10 and 30 members.

Deploys a federation of each size on a fresh Anvil, creates a task whose quorum
is every member, runs several complete rounds (every member submits, then
every member attests; the last attestation finalizes and opens the next round)
and reads gas from the receipts.  Reported per size:

  submitUpdate    most gas any submission used (the one that closes the set included)
  attest          most gas any non-finalizing attestation used
  finalize_extra  finalizing attestation minus the cheapest attestation of its round
  per_peer_round  all gas of a round's submissions and attestations, divided by the members

Budget (from the ledger issue): submitUpdate <= 60k, attest <= 60k,
finalize_extra <= 40k, per_peer_round <= 130k.  Prints a table, writes
runs/bench/gas.json, and exits 1 if any figure is over budget.

Usage: scripts/bench/gas [--sizes 3,10,30] [--rounds 3] [--out runs/bench/gas.json]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_VENV_PY = REPO / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (REPO / ".venv").resolve() and _VENV_PY.exists():
    os.execv(str(_VENV_PY), [str(_VENV_PY), str(Path(__file__).resolve()), *sys.argv[1:]])
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

from eth_account import Account  # noqa: E402

from consensus.scoring import Score, scores_tree  # noqa: E402
from fedchain.contract_build import federation_artifact  # noqa: E402
from fedchain.localnet.chain_node import AnvilNode  # noqa: E402
from peer.ledger.client import FederationClient, connect, deploy  # noqa: E402

BUDGET = {
    "submitUpdate": 60_000,
    "attest": 60_000,
    "finalize_extra": 40_000,
    "per_peer_round": 130_000,
}
HOUR = 3600
MAX_SAMPLES = 1000


def cid(data: bytes) -> bytes:
    return bytes([0x01, 0x55, 0x12, 0x20]) + hashlib.sha256(data).digest()


@dataclass
class SizeResult:
    members: int
    submit: list[int] = field(default_factory=list)
    attest: list[int] = field(default_factory=list)
    finalize_extra: list[int] = field(default_factory=list)
    per_peer_round: list[float] = field(default_factory=list)
    deploy_gas: int = 0
    create_task_gas: int = 0
    claim_gas: list[int] = field(default_factory=list)
    round_seconds: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, int]:
        return {
            "submitUpdate": max(self.submit),
            "attest": max(self.attest),
            "finalize_extra": max(self.finalize_extra),
            "per_peer_round": round(max(self.per_peer_round)),
        }


def bench_size(n: int, rounds: int) -> SizeResult:
    result = SizeResult(n)
    with AnvilNode(accounts=n + 1) as node:
        w3 = connect(node.rpc_url)
        accounts = [Account.from_key(k) for k in node.dev_private_keys(n + 1)]
        deployer, members = accounts[0], accounts[1:]
        artifact = federation_artifact()
        dep = deploy(
            w3,
            deployer,
            [m.address for m in members],
            [f"12D3KooWBench{i:04d}" for i in range(n)],
            5001,
            artifact=artifact,
        )
        assert dep.last_result is not None
        result.deploy_gas = dep.last_result.gas_used
        clients = [FederationClient(w3, dep.address, m, artifact=artifact) for m in members]
        task = clients[0].create_task(
            cid(b"spec"), cid(b"model 0"), n, HOUR, HOUR, rounds + 1, MAX_SAMPLES
        )
        assert clients[0].last_result is not None
        result.create_task_gas = clients[0].last_result.gas_used
        for r in range(1, rounds + 1):
            t0 = time.perf_counter()
            submits = [  # with a growing differential-privacy epsilon, as a DP task commits
                c.submit_update(
                    task, r, cid(f"update {r} {i}".encode()), 100 + i, 700 * r + i
                ).gas_used
                for i, c in enumerate(clients)
            ]
            tree = scores_tree(task, r, [Score(m.address, 100 + i) for i, m in enumerate(members)])
            aggregate = cid(f"aggregate {r}".encode())
            attests = [c.attest_aggregate(task, r, aggregate, tree.root).gas_used for c in clients]
            result.round_seconds.append(time.perf_counter() - t0)
            assert clients[0].round_info(task, r).status == 3, f"round {r} did not finalize"
            result.submit.extend(submits)
            plain, final = attests[:-1], attests[-1]
            result.attest.extend(plain)
            result.finalize_extra.append(final - min(plain))
            result.per_peer_round.append((sum(submits) + sum(attests)) / n)
            result.claim_gas.append(
                clients[-1].claim_contribution(task, r, 100 + n - 1, tree.proof(n - 1)).gas_used
            )
    return result


def _k(value: float) -> str:
    return f"{value / 1000:.1f}k"


def print_table(results: list[SizeResult]) -> bool:
    cols = [
        "members",
        "submitUpdate",
        "attest",
        "finalize_extra",
        "per_peer_round",
        "createTask",
        "deploy",
        "claim",
        "round s",
    ]
    rows = []
    ok = True
    for res in results:
        s = res.summary()
        cells = [str(res.members)]
        for key in ("submitUpdate", "attest", "finalize_extra", "per_peer_round"):
            over = s[key] > BUDGET[key]
            ok = ok and not over
            cells.append(_k(s[key]) + (" OVER" if over else ""))
        cells += [
            _k(res.create_task_gas),
            _k(res.deploy_gas),
            _k(max(res.claim_gas)),
            f"{statistics.median(res.round_seconds):.3f}",
        ]
        rows.append(cells)
    budget = (
        ["budget"]
        + [_k(BUDGET[k]) for k in ("submitUpdate", "attest", "finalize_extra", "per_peer_round")]
        + ["", "", "", ""]
    )
    widths = [max(len(c), *(len(r[i]) for r in [*rows, budget])) for i, c in enumerate(cols)]
    line = "  ".join(c.rjust(w) for c, w in zip(cols, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in [*rows, budget]:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)))
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="3,10,30", help="federation sizes (comma-separated)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per size")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench" / "gas.json")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if any(s < 2 for s in sizes) or args.rounds < 1:
        parser.error("sizes must be >= 2 (a finalizing and a plain attestation) and rounds >= 1")
    results = []
    for n in sizes:
        t0 = time.perf_counter()
        results.append(bench_size(n, args.rounds))
        print(
            f"{n} members: {args.rounds} rounds in {time.perf_counter() - t0:.1f} s",
            file=sys.stderr,
        )
    ok = print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({str(r.members): r.summary() for r in results}, indent=2) + "\n")
    print(f"wrote {args.out}")
    if not ok:
        print("over budget", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
