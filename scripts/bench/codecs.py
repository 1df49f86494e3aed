"""Update encodings benchmark: bytes per update and the agreed model's quality, per codec.

    scripts/bench/codecs [--task hapt|heart] [--rounds 20] [--codecs none,int8,...]
                         [--seed 0] [--workers 2] [--quick] [--out runs/bench]

Each codec runs ``fedchain simulate`` (the peers' own node, encoder and bounded decoder on the
in-memory chain, content store and gossip) with the task spec's ``encoding`` set to it and
FedAvg as the rule (as in the learning bench: no selection step to amplify small differences).
HAPT: 10 institutions, 20 rounds, macro-F1; heart: 4 hospitals, accuracy.  The metric is the
agreed final model's on the pooled test sets of all institutions.  Bytes are the sizes of the
updates the peers sent (``update_bytes`` in each peer's ``history.jsonl``): per update (mean)
and per round (one copy of every member's update; every other member fetches each).
``--quick``: heart, 2 rounds, for the tests.

Writes ``<out>/codecs.json`` shaped ``{task: {codec: {"bytes_per_update": n,
"bytes_per_round": n, "compression": x, "metric": m, "metric_delta": d}}}`` (``compression``
and ``metric_delta`` against ``none``), ``codecs.meta.json`` (configuration, timing, the
issue's target and whether it was met) and ``codecs.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
VENV = ROOT / ".venv"
if (VENV / "bin" / "python").exists() and Path(sys.prefix).resolve() != VENV.resolve():
    os.execv(VENV / "bin" / "python", [str(VENV / "bin" / "python"), __file__, *sys.argv[1:]])
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

CODECS: dict[str, dict[str, Any]] = {
    "none": {"codec": "none"},
    "fp16": {"codec": "fp16"},
    "int8": {"codec": "int8"},
    "int8-deflate": {"codec": "int8", "compress": "deflate"},
    "topk-0.1": {"codec": "topk", "params": {"fraction": 0.1}},
    "topk-0.01": {"codec": "topk", "params": {"fraction": 0.01}},
}
"""Each encoding as the bench runs it, by the name its row has."""


@dataclass(frozen=True)
class Budget:
    peers: int
    rounds: int
    metric: str


BUDGETS = {
    "hapt": Budget(peers=10, rounds=20, metric="macro_f1"),
    "heart": Budget(peers=4, rounds=10, metric="accuracy"),
}
QUICK = Budget(peers=4, rounds=2, metric="accuracy")

TARGET = "int8 or top-k: >= 4x fewer bytes per round for <= 1 point of HAPT macro-F1"


@dataclass(frozen=True)
class Job:
    task: str
    codec: str
    peers: int
    rounds: int
    metric: str
    seed: int
    out: str


def _pooled_test(task: Any, spec: Any, job: Job, names: list[str]) -> Any:
    """Every institution's test split with every modality, pooled (HAPT institutions without a
    gyroscope train on the accelerometer only, but are scored on both, as in the robust bench)."""
    from fedchain.localnet.plan import plan_for
    from models.sites import concatenate
    from models.tasks import LocalData
    from models.training import Samples

    plan = plan_for(job.task, job.peers, seed=job.seed)
    tests = []
    for name in names:
        local = dict(plan.data[name])
        local.pop("modalities", None)
        tests.append(task.load(spec, LocalData.model_validate(local)).test)
    return Samples(concatenate([t.x for t in tests]), np.concatenate([t.y for t in tests]))


def run_job(job: Job) -> dict[str, Any]:
    """One simulation with one encoding: bytes sent and the final model's metric."""
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)
    from rich.console import Console

    from consensus.task_spec import AggregationSpec, EncodingSpec
    from fedchain.simulator.partitions import population
    from fedchain.simulator.run import simulate
    from models.tasks import Learner, get_task
    from models.tasks.learner import evaluate_weights
    from peer.records import History

    class Unevaluated(Learner):
        """Skips per-round local evaluation: only the final model is scored, pooled."""

        def evaluate(self, weights: Any) -> dict[str, float]:
            return {}

    task = get_task(job.task)
    base = population(task, job.peers, job.seed)
    spec = base.spec.model_copy(
        update={
            "aggregation": AggregationSpec(rule="fedavg"),
            "encoding": EncodingSpec.model_validate(CODECS[job.codec]),
        }
    )
    learners = {n: Unevaluated(task, spec, ln.data, n) for n, ln in base.learners.items()}
    started = time.monotonic()
    shutil.rmtree(job.out, ignore_errors=True)  # never resume an earlier run's peer state
    result = simulate(
        job.task,
        job.peers,
        job.rounds,
        job.seed,
        out=Path(job.out),
        local_only=False,
        console=Console(stderr=True, quiet=True),
        given_population=type(base)(spec, learners, base.partition),
    )
    assert result.final_weights is not None
    pooled = _pooled_test(task, spec, job, list(learners))
    metric = evaluate_weights(spec, result.final_weights, pooled)
    per_round: dict[int, list[int]] = {}
    for name in learners:
        for entry in History(Path(job.out) / "peers" / name).entries():
            if entry.get("update_bytes") is not None:
                per_round.setdefault(int(entry["round"]), []).append(int(entry["update_bytes"]))
    sizes = [b for r in per_round.values() for b in r]
    return {
        "job": job.__dict__,
        "bytes_per_update": float(np.mean(sizes)),
        "bytes_per_round": float(np.mean([sum(r) for r in per_round.values()])),
        "metric": float(metric[job.metric]),
        "left_out": sum(len(r["left_out"]) for r in result.record["rounds"]),
        "seconds": round(time.monotonic() - started, 1),
    }


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    table: dict[str, Any] = {}
    for run in runs:
        table.setdefault(run["job"]["task"], {})[run["job"]["codec"]] = run
    out: dict[str, Any] = {}
    for task, by_codec in table.items():
        base = by_codec.get("none")
        out[task] = {}
        for codec in [c for c in CODECS if c in by_codec]:
            run = by_codec[codec]
            out[task][codec] = {
                "bytes_per_update": round(run["bytes_per_update"], 1),
                "bytes_per_round": round(run["bytes_per_round"], 1),
                "compression": None
                if base is None
                else round(base["bytes_per_round"] / run["bytes_per_round"], 2),
                "metric": round(run["metric"], 4),
                "metric_delta": None if base is None else round(run["metric"] - base["metric"], 4),
            }
    return out


def targets(table: dict[str, Any]) -> dict[str, Any]:
    hapt = table.get("hapt", {})
    met = [
        c
        for c, row in hapt.items()
        if c.startswith(("int8", "topk"))
        and row["compression"] is not None
        and row["compression"] >= 4
        and row["metric_delta"] >= -0.01
    ]
    return {TARGET: {"met": bool(met) if hapt else None, "by": met}}


def write_plot(path: Path, table: dict[str, Any], metric: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for task, rows in table.items():
        names = list(rows)
        axes[0].bar(names, [rows[n]["bytes_per_update"] for n in names], label=task)
        axes[1].bar(names, [100 * rows[n]["metric"] for n in names], label=task)
    axes[0].set_yscale("log")
    axes[0].set_ylabel("bytes per update (log)")
    axes[1].set_ylabel(f"{metric}, percent (pooled test)")
    for ax in axes:
        ax.tick_params(axis="x", rotation=30)
        ax.legend(fontsize=8)
    fig.suptitle("update encodings: size and quality of the agreed model")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def render(table: dict[str, Any], metric: str) -> None:
    from rich.console import Console
    from rich.table import Table

    for task, rows in table.items():
        t = Table(title=f"{task}: bytes per update and {metric} of the agreed final model")
        for col in ("codec", "bytes/update", "bytes/round", "compression", metric, "Δ vs none"):
            t.add_column(col, justify="right")
        for codec, row in rows.items():
            t.add_row(
                codec,
                f"{row['bytes_per_update']:,.0f}",
                f"{row['bytes_per_round']:,.0f}",
                "n/a" if row["compression"] is None else f"{row['compression']:.2f}x",
                f"{100 * row['metric']:.2f}",
                "n/a" if row["metric_delta"] is None else f"{100 * row['metric_delta']:+.2f}",
            )
        Console().print(t)


def earlier_runs(meta_path: Path, like: Job, rerun: set[str]) -> list[dict[str, Any]]:
    """The runs of an earlier invocation with ``like``'s task, peers, rounds and seed, except
    the codecs run again now; none when the file is missing or was made differently."""
    try:
        earlier = json.loads(meta_path.read_text())["runs"]
    except (OSError, ValueError, KeyError):
        return []
    same = ("task", "peers", "rounds", "seed")
    return [
        r
        for r in earlier
        if all(r["job"][k] == getattr(like, k) for k in same) and r["job"]["codec"] not in rerun
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="hapt", choices=sorted(BUDGETS))
    parser.add_argument("--rounds", type=int, default=None, help="default: 20 (hapt), 10 (heart)")
    parser.add_argument("--codecs", default=",".join(CODECS), help="comma-separated")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="heart, 2 rounds: for the tests")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument(
        "--keep-others",
        action="store_true",
        help="keep the other codecs' runs from an existing codecs.meta.json of the same task, "
        "peers, rounds and seed (adds a row without re-running the rest)",
    )
    args = parser.parse_args(argv)
    codecs = [c for c in args.codecs.split(",") if c]
    unknown = [c for c in codecs if c not in CODECS]
    if unknown:
        parser.error(f"unknown codec rows {unknown}; known: {', '.join(CODECS)}")
    task = "heart" if args.quick else args.task
    budget = QUICK if args.quick else BUDGETS[task]
    rounds = args.rounds or budget.rounds
    jobs = [
        Job(task, c, budget.peers, rounds, budget.metric, args.seed,
            str(args.out / "codecs-simulate" / task / c))
        for c in codecs
    ]  # fmt: skip
    started = time.perf_counter()
    print(f"{len(jobs)} simulations on {args.workers} worker(s)", file=sys.stderr, flush=True)
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
            runs = list(pool.map(run_job, jobs))
    else:
        runs = [run_job(j) for j in jobs]
    out: Path = args.out
    if args.keep_others:
        runs = [*earlier_runs(out / "codecs.meta.json", jobs[0], set(codecs)), *runs]
    table = summarize(runs)
    out.mkdir(parents=True, exist_ok=True)
    (out / "codecs.json").write_text(json.dumps(table, indent=1) + "\n")
    import torch

    meta = {
        "task": task,
        "peers": budget.peers,
        "rounds": rounds,
        "seed": args.seed,
        "rule": "fedavg",
        "metric": budget.metric,
        "quick": args.quick,
        "codecs": {r["job"]["codec"]: CODECS[r["job"]["codec"]] for r in runs},
        "runs": runs,
        "targets": targets(table),
        "seconds_total": round(time.perf_counter() - started, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    (out / "codecs.meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    write_plot(out / "codecs.png", table, budget.metric)
    render(table, budget.metric)
    print(f"\nwrote {out / 'codecs.json'}, codecs.meta.json, codecs.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
