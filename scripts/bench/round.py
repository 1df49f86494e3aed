"""Round cost benchmark: what the protocol itself costs per round, at real model sizes.

    scripts/bench/round [--peers 4,10] [--params 14,1M,10M] [--blocks 0,1,2] [--rounds N]
                        [--cells 4x1M@0,...] [--no-throughput] [--quick] [--out runs/bench]

Each cell is a real local federation (:class:`fedchain.localnet.devnet.LocalFederation`: Anvil,
one Kubo per institution, one ``fedchain peer run`` process per institution gossiping over
libp2p) on the benchmark-only task ``synthetic-bench`` (a model of exactly ``params`` float32
numbers whose "training" is one SGD step on two samples), FedAvg, quorum = every peer. Block
time 0 is Anvil mining each transaction at once; 1 and 2 are ``--block-time``.

Per peer and round, the steps come from each peer's ``history.jsonl`` (``seconds``):
fetch_model, train, encode, add, submit (transaction), wait_close, fetch_updates (fetch + verify
all), aggregate, add_aggregate, attest (transaction), wait_final; plus ``round`` and
``overhead`` (round minus train). Round 1 is left out of the figures when there are 3 rounds or
more (its wall time includes the peers' start-up). Bytes: what each Kubo received plus sent over
the whole run (``stats/bitswap`` block data, or ``stats/bw`` if more), divided by the rounds
(gossip, a few hundred bytes of announcements per update, is not counted). Peak RSS: ``VmHWM``
of each peer process, read every 0.2 s while it runs; Kubo's own peak is reported apart
(``kubo_peak_rss_mb``), not included.

With no cell options the default table runs (:data:`DEFAULT_CELLS`, within the hour on two
cores; 10 peers x 10M is skipped: it needs more than 24 GB); ``--quick`` runs 2 peers x 14
numbers, 2 rounds, and a tiny throughput check, for tests.

Also measures aggregation throughput (``_aggregation_throughput``): every registered rule on 10
updates of 10M numbers, GB/s of input, with the outputs of two runs compared bit for bit.

Writes ``<out>/round.json`` (``{"<peers>x<params>@<block>": {"overhead_s": {"median", "p90"},
"round_s": {...}, "bytes_per_peer": n, "peak_rss_mb": m, "steps": {step: median}, ...}}``,
rewritten after every cell so a partial run keeps what finished), ``round.aggregation.json``
(the throughput, rewritten after every rule), ``round.meta.json``
(configuration, throughput, skipped cells, load) and ``round.png`` (the step breakdown).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / ".venv"
if (VENV / "bin" / "python").exists() and Path(sys.prefix).resolve() != VENV.resolve():
    os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])
for path in (ROOT, HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

STEPS = (
    "fetch_model", "train", "encode", "add", "submit", "wait_close", "fetch_updates",
    "aggregate", "add_aggregate", "attest", "wait_final",
)  # fmt: skip
"""The steps a peer records per round, in the order it takes them."""

SIZES = {"14": 14, "1M": 1_000_000, "10M": 10_000_000}
DEFAULT_CELLS = [
    "4x1M@0", "4x10M@0", "10x1M@0", "4x1M@1", "4x1M@2", "4x14@0",
    "10x1M@1", "10x1M@2", "10x14@0", "4x14@1", "4x14@2", "10x10M@0",
]  # fmt: skip
"""Every size at instant blocks; 1 and 2 s blocks at 1M numbers (and 14, the idle baseline);
the cells the issue sets targets for come first, so a run cut short keeps them."""
MEMORY_LIMIT_GB = 24.0
POLL_S = 0.2


def params_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1000 and n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


def parse_params(text: str) -> int:
    if text in SIZES:
        return SIZES[text]
    scale = {"k": 1000, "M": 1_000_000}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def rounds_for(params: int, asked: int | None) -> int:
    """Fewer rounds for the big cells keep the default table within the hour."""
    if asked is not None:
        return asked
    return 3 if params >= 10_000_000 else 5


def estimated_gb(peers: int, params: int) -> float:
    """A generous bound on the cell's memory: each peer holds every update (float32) and their
    float64 changes, stacked and sorted for medians (~5 copies per member), plus 10 model
    copies and 0.3 GB of its own and its Kubo's."""
    return peers * (params * 4 * (5 * peers + 10) / 1e9 + 0.3)


def vm_hwm_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def kubo_stats(api_port: int, what: str) -> dict[str, Any]:
    req = urllib.request.Request(f"http://127.0.0.1:{api_port}/api/v0/stats/{what}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())
    return answer


def kubo_bytes(api_port: int) -> tuple[int, int]:
    """(bytes received, bytes sent) by this Kubo since it started: bitswap's block data, or the
    libp2p bandwidth counter if that says more (it also counts protocol traffic)."""
    bitswap = kubo_stats(api_port, "bitswap")
    bw = kubo_stats(api_port, "bw")
    return (
        max(int(bitswap.get("DataReceived", 0)), int(bw.get("TotalIn", 0))),
        max(int(bitswap.get("DataSent", 0)), int(bw.get("TotalOut", 0))),
    )


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return {"median": statistics.median(ordered), "p90": p90}


def stored_format(data: bytes) -> str:
    """What a stored update is to anyone holding its bytes: ``sealed`` (members-only envelope),
    ``masked`` (secure aggregation's residues), ``safetensors`` (plain weights) or ``other``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    from consensus.secagg.wire import MASKED_MAGIC
    from peer.confidential.envelope import is_sealed

    if is_sealed(data):
        return "sealed"
    if data.startswith(MASKED_MAGIC):
        return "masked"
    try:
        load(data)
    except (SafetensorError, ValueError):
        return "other"
    return "safetensors"


def run_cell(
    peers: int,
    params: int,
    block: int,
    rounds: int,
    root: Path,
    spec_fields: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One federation from start to task completion; the cell's row.  ``spec_fields`` are
    further TaskSpec fields (``confidentiality``, ``secure_aggregation``) for benches that
    compare protocol modes at one size."""
    from consensus.task_spec import AggregationSpec
    from fedchain.localnet.devnet import LocalFederation, TaskParams
    from models.tasks import get_task
    from peer.content.cid import cid_from_bytes
    from peer.content.kubo import KuboContentStore
    from peer.records import History

    spec = get_task("synthetic-bench").default_spec(
        name=f"bench-{peers}x{params_label(params)}",
        task_args={"params": params},
        aggregation=AggregationSpec(rule="fedavg"),
        **dict(spec_fields or {}),
    )
    names = [f"site{i}" for i in range(peers)]
    fed = LocalFederation(root, names, block_time=block, fetch_timeout=120.0)
    peak: dict[str, float] = {}
    kubo_peak: dict[str, float] = {}
    t0 = time.monotonic()
    with fed:
        fed.start(TaskParams(spec=spec, rounds=rounds, quorum=peers))
        for name in names:
            fed.spawn_peer(name)
        deadline = time.monotonic() + 300 + rounds * (60 + params / 1e5)
        while any(p.is_running() for p in fed.peers.values()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"not done within {deadline - t0:.0f} s")
            for name, proc in fed.peers.items():
                for table, pid in ((peak, proc.pid), (kubo_peak, fed.hospital(name).kubo.pid)):
                    mb = vm_hwm_mb(pid)
                    if mb is not None:
                        table[name] = max(table.get(name, 0.0), mb)
            time.sleep(POLL_S)
        codes = {n: p.returncode for n, p in fed.peers.items()}
        bad = {n: c for n, c in codes.items() if c != 0}
        if bad:
            tails = "\n".join(f"--- {n}\n{fed.peers[n].log_tail(30)}" for n in bad)
            raise RuntimeError(f"peers ended with {bad}\n{tails}")
        bw = [kubo_bytes(fed.hospital(n).kubo.api_port) for n in names]
        assert fed.deployer is not None
        last = fed.deployer.submissions(fed.task_id, rounds)
        with KuboContentStore(fed.hospital(names[0]).kubo.api_multiaddr) as store:
            formats = sorted({stored_format(store.get(cid_from_bytes(s.cid), timeout=30))
                              for s in last})  # fmt: skip
        histories = {n: History(fed.hospital(n).home / "state").records() for n in names}
    wall = time.monotonic() - t0
    first = 2 if rounds >= 3 else 1
    samples = [
        rec.seconds
        for records in histories.values()
        for rec in records
        if rec.round >= first and "round" in rec.seconds and rec.status == "finalized"
    ]
    if not samples:
        raise RuntimeError("no finalized round with timings in the peers' histories")
    steps = {
        s: statistics.median(float(x.get(s, 0.0)) for x in samples)
        for s in STEPS
        if any(s in x for x in samples)
    }
    return {
        "overhead_s": quantiles([float(x["overhead"]) for x in samples]),
        "round_s": quantiles([float(x["round"]) for x in samples]),
        "bytes_per_peer": int(statistics.mean(i + o for i, o in bw) / rounds),
        "bytes_in_per_peer": int(statistics.mean(i for i, _ in bw) / rounds),
        "bytes_out_per_peer": int(statistics.mean(o for _, o in bw) / rounds),
        "peak_rss_mb": round(max(peak.values()), 1),
        "kubo_peak_rss_mb": round(max(kubo_peak.values()), 1) if kubo_peak else None,
        "steps": steps,
        "update_format": formats,
        "rounds": rounds,
        "rounds_measured": rounds - first + 1,
        "model_mb": params * 4 / 1e6,
        "wall_s": round(wall, 1),
    }


def print_table(table: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="Round cost per peer (medians over peers x rounds)")
    for col in ("cell", "overhead s", "p90 s", "round s", "MB/peer/round", "peak RSS MB"):
        t.add_column(col, justify="right")
    done = {k: r for k, r in table.items() if "steps" in r}
    for key, row in table.items():
        if key not in done:
            t.add_row(key, row.get("error", row.get("skipped", ""))[:60])
            continue
        t.add_row(
            key,
            f"{row['overhead_s']['median']:.2f}",
            f"{row['overhead_s']['p90']:.2f}",
            f"{row['round_s']['median']:.2f}",
            f"{row['bytes_per_peer'] / 1e6:.2f}",
            f"{row['peak_rss_mb']:.0f}",
        )
    steps = Table(title="Median seconds per step")
    steps.add_column("step")
    for key in done:
        steps.add_column(key, justify="right")
    for s in STEPS:
        steps.add_row(s, *(f"{r['steps'].get(s, 0.0):.3f}" for r in done.values()))
    Console().print(t)
    Console().print(steps)


def print_throughput(result: dict[str, Any], updates: int, params: int) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"Aggregation throughput: {updates} updates x {params_label(params)} float32")
    for col in ("rule", "GB/s of input", "seconds", "bit-identical"):
        t.add_column(col, justify="right")
    for rule, row in result.items():
        t.add_row(
            rule, f"{row['gb_per_s']:.2f}", f"{row['seconds']:.3f}", str(row["bit_identical"])
        )
    Console().print(t)


def write_plot(path: Path, table: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {k: r for k, r in table.items() if "steps" in r}
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(rows) + 3), 4.5))
    bottoms = [0.0] * len(rows)
    cmap = plt.get_cmap("tab20")
    for i, step in enumerate(s for s in STEPS if s != "train"):
        values = [r["steps"].get(step, 0.0) for r in rows.values()]
        ax.bar(list(rows), values, bottom=bottoms, label=step, color=cmap(i))
        bottoms = [b + v for b, v in zip(bottoms, values, strict=True)]
    ax.scatter(list(rows), [r["overhead_s"]["median"] for r in rows.values()], color="black",
               marker="_", s=300, label="median overhead", zorder=3)  # fmt: skip
    ax.set_ylabel("seconds per round (median per step)")
    ax.set_title("Where a round's protocol overhead goes (training left out)")
    ax.tick_params(axis="x", rotation=45)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_cells(args: argparse.Namespace) -> list[tuple[int, int, int]]:
    if args.quick:
        return [(2, 14, 0)]
    if args.cells:
        texts = args.cells.split(",")
    elif args.peers or args.params or args.blocks:
        texts = [
            f"{p}x{s}@{b}"
            for p in (args.peers or "4,10").split(",")
            for s in (args.params or "14,1M,10M").split(",")
            for b in (args.blocks or "0,1,2").split(",")
        ]
    else:
        texts = DEFAULT_CELLS
    cells = []
    for text in texts:
        try:
            peers, rest = text.split("x")
            size, block = rest.split("@")
            cells.append((int(peers), parse_params(size), int(block)))
        except ValueError:
            sys.exit(f"bad cell {text!r}: write <peers>x<params>@<block seconds>, e.g. 4x1M@0")
    return cells


def kept_cells(out: Path, cells: list[tuple[int, int, int]]) -> dict[str, Any]:
    """The cells of ``out``'s round.json that ``cells`` does not measure again."""
    try:
        earlier: dict[str, Any] = json.loads((out / "round.json").read_text())
    except (OSError, ValueError):
        return {}
    again = {f"{p}x{params_label(n)}@{b}" for p, n, b in cells}
    return {key: row for key, row in earlier.items() if key not in again}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", help="comma-separated peer counts (default 4,10)")
    ap.add_argument("--params", help="comma-separated model sizes: 14, 1M, 10M, 250k, ...")
    ap.add_argument("--blocks", help="comma-separated block times in seconds: 0 (instant), 1, 2")
    ap.add_argument("--cells", help="explicit cells, e.g. 4x1M@0,10x1M@2 (overrides the above)")
    ap.add_argument("--rounds", type=int, help="rounds per cell (default 5; 3 at 10M numbers)")
    ap.add_argument("--no-throughput", action="store_true", help="skip the aggregation part")
    ap.add_argument("--no-cells", action="store_true", help="only the aggregation part")
    ap.add_argument("--quick", action="store_true", help="2 peers x 14 numbers, 2 rounds (tests)")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    ap.add_argument(
        "--keep-others",
        action="store_true",
        help="keep the cells of an existing round.json that this run does not measure again",
    )
    args = ap.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        sys.exit(f"--rounds must be >= 1, got {args.rounds}")
    cells = [] if args.no_cells else parse_cells(args)
    rounds_arg = 2 if args.quick else args.rounds
    args.out.mkdir(parents=True, exist_ok=True)

    started = time.time()
    table: dict[str, Any] = kept_cells(args.out, cells) if args.keep_others else {}
    meta: dict[str, Any] = {
        "quick": args.quick,
        "cells": [f"{p}x{params_label(n)}@{b}" for p, n, b in cells],
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "load_before": os.getloadavg(),
        "kept_from_earlier_run": sorted(table),
        "notes": "round 1 left out when rounds >= 3; bytes are Kubo's (bitswap data or "
        "stats/bw, in+out) per peer per round, gossip not counted; peak RSS is the peer "
        "process's VmHWM, Kubo's apart",
    }

    def save() -> None:
        if args.no_cells:  # the table of an earlier run stays as it is
            return
        (args.out / "round.json").write_text(json.dumps(table, indent=1) + "\n")
        meta["seconds"] = round(time.time() - started, 1)
        meta["load_after"] = os.getloadavg()
        (args.out / "round.meta.json").write_text(json.dumps(meta, indent=1) + "\n")

    if not args.no_throughput:  # first: a quick, self-contained figure a cut-short run keeps
        from _aggregation_throughput import measure

        updates, size = (10, 1000) if args.quick else (10, 10_000_000)

        def keep(so_far: dict[str, Any]) -> None:
            meta["throughput"] = {"updates": updates, "params": size, "rules": so_far}
            name, row = list(so_far.items())[-1]
            print(f"aggregation {name}: {row['gb_per_s']:.2f} GB/s", flush=True)
            (args.out / "round.aggregation.json").write_text(
                json.dumps(meta["throughput"], indent=1) + "\n"
            )

        print_throughput(measure(updates, size, on_rule=keep), updates, size)
    for peers, params, block in cells:
        key = f"{peers}x{params_label(params)}@{block}"
        if estimated_gb(peers, params) > MEMORY_LIMIT_GB:
            table[key] = {"skipped": f"needs ~{estimated_gb(peers, params):.0f} GB"}
            print(f"{key}: skipped (estimated {estimated_gb(peers, params):.0f} GB)", flush=True)
            save()
            continue
        rounds = rounds_for(params, rounds_arg)
        print(f"{key}: {rounds} rounds ...", flush=True)
        try:
            with tempfile.TemporaryDirectory(prefix="fedchain-bench-round-") as tmp:
                table[key] = run_cell(peers, params, block, rounds, Path(tmp))
        except (RuntimeError, TimeoutError, OSError) as exc:
            table[key] = {"error": str(exc)[:2000]}
            print(f"{key}: FAILED: {exc}", file=sys.stderr, flush=True)
        else:
            row = table[key]
            print(f"{key}: overhead median {row['overhead_s']['median']:.2f} s, "
                  f"peak RSS {row['peak_rss_mb']:.0f} MB", flush=True)  # fmt: skip
        save()
    if cells:
        print_table(table)
        save()
        write_plot(args.out / "round.png", table)
        print(f"\nwrote {args.out / 'round.json'}, round.meta.json, round.png")
    failed = [k for k, r in table.items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    from peer.startup import terminate_as_interrupt

    with terminate_as_interrupt():  # a stopped bench stops its chain, Kubos and peers too
        sys.exit(main())
