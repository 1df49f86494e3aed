"""Robustness benchmark: every aggregation rule against every registered attack, by simulation.

    scripts/bench/robust [--seeds 3] [--tasks heart,hapt] [--rules ...] [--attacks ...]
                         [--workers 2] [--quick] [--out runs/bench]

Each cell is ``fedchain simulate`` (the peers' own node, consensus and credit code on the
in-memory chain, content store and gossip) with a share of Byzantine members playing a
registered attack (``fedchain.attacks``).  Heart: 4 hospitals, every rule, shares 0 and 1 of
4.  HAPT: 10 institutions (subject groups), FedAvg, the default rule and the robust rules
named in ``HAPT_RULES``, shares 0 and 3 of 10, fewer rounds than the learning bench (see
``BUDGETS``).  The metric is accuracy (heart) or macro-F1 (HAPT) of the agreed final model on
the pooled test sets of all institutions.  The credit each member claimed on the chain gives
the Byzantine members' share and, in clean runs, how far each honest member's credit share is
from its data share.

Writes ``<out>/robust.json`` shaped ``{task: {rule: {attack: {share: {"metric": {"mean",
"std"}, "byzantine_credit_share": z}}}}}``, ``robust.meta.json`` (budgets, timing, the targets
of the issue and whether they were met, honest credit tracking, pooled baselines) and
``robust.png`` (heat maps of the loss against each rule's clean run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for entry in (str(ROOT), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import numpy as np  # noqa: E402

RULE_SPECS: dict[str, dict[str, Any]] = {
    "fedavg": {"rule": "fedavg"},
    "fedprox": {"rule": "fedprox", "params": {"mu": 0.01}},
    "fedadam": {"rule": "fedadam"},
    "fedyogi": {"rule": "fedyogi"},
    "median": {"rule": "median"},
    "trimmed-mean": {"rule": "trimmed-mean", "params": {"trim": 0.25}},
    "krum": {"rule": "krum", "params": {"byzantine": 1}},
    "multi-krum": {"rule": "multi-krum", "params": {"byzantine": 1}},
    "geometric-median": {"rule": "geometric-median"},
    "geometric-median:weighted": {"rule": "geometric-median", "params": {"weighted": True}},
    "norm-clip+fedavg": {
        "rule": "fedavg",
        "wrappers": [{"name": "norm-clip", "params": {"median_multiple": 2.0}}],
    },
}
"""Each rule as the bench runs it; Byzantine tolerance 1 (heart: 1 of 4), 3 for HAPT."""

from consensus.task_spec import DEFAULT_RULE  # noqa: E402  (the rule new tasks get)

HAPT_RULES = ("fedavg", "multi-krum", "geometric-median:weighted", "median", "trimmed-mean")
CLEAN = "none"


@dataclass(frozen=True)
class Budget:
    peers: int
    byzantine: int
    rounds: int
    metric: str


BUDGETS = {
    "heart": Budget(peers=4, byzantine=1, rounds=10, metric="accuracy"),
    "hapt": Budget(peers=10, byzantine=3, rounds=4, metric="macro_f1"),
}
QUICK = {
    "heart": Budget(peers=4, byzantine=1, rounds=2, metric="accuracy"),
    "hapt": Budget(peers=10, byzantine=3, rounds=1, metric="macro_f1"),
}


@dataclass(frozen=True)
class Job:
    task: str
    rule: str
    attack: str
    byzantine: int
    seed: int
    budget: Budget
    out: str


def rule_spec(name: str, task: str) -> dict[str, Any]:
    spec = json.loads(json.dumps(RULE_SPECS[name]))
    if task == "hapt" and "byzantine" in spec.get("params", {}):
        spec["params"]["byzantine"] = BUDGETS["hapt"].byzantine
    if task == "hapt" and name == "trimmed-mean":
        spec["params"]["trim"] = 0.3
    return spec


def _unevaluated_learner() -> type:
    from models.tasks import Learner

    class Unevaluated(Learner):
        """Skips the per-round evaluation on the local test split (the bench scores only the
        final agreed model, on the pooled test set): a third of a heart round's time."""

        def evaluate(self, weights: Any) -> dict[str, float]:
            return {}

    return Unevaluated


def run_job(job: Job) -> dict[str, Any]:
    """One simulation; returns the metric and the credit each member claimed."""
    import logging

    import torch

    torch.set_num_threads(1)
    logging.disable(logging.WARNING)  # every virtual peer logs each left-out update
    from _pooled_test import pooled_full_test
    from rich.console import Console

    from consensus.task_spec import AggregationSpec
    from fedchain.simulator.partitions import population
    from fedchain.simulator.run import simulate
    from models.tasks import get_task
    from models.tasks.learner import evaluate_weights

    _Unevaluated = _unevaluated_learner()
    task = get_task(job.task)
    base = population(task, job.budget.peers, job.seed)
    spec = base.spec.model_copy(
        update={"aggregation": AggregationSpec.model_validate(rule_spec(job.rule, job.task))}
    )
    learners = {n: _Unevaluated(task, spec, ln.data, n) for n, ln in base.learners.items()}
    pop = type(base)(spec, learners, base.partition)
    started = time.monotonic()
    shutil.rmtree(job.out, ignore_errors=True)  # never resume an interrupted run's peer state
    result = simulate(
        job.task,
        job.budget.peers,
        job.budget.rounds,
        job.seed,
        out=Path(job.out),
        local_only=False,
        console=Console(stderr=True, quiet=True),
        given_population=pop,
        attack=None if job.attack == CLEAN else job.attack,
        byzantine=0 if job.attack == CLEAN else job.byzantine,
    )
    pooled = pooled_full_test(task, spec, job.budget.peers, job.seed)
    assert result.final_weights is not None
    metrics = evaluate_weights(spec, result.final_weights, pooled)
    institutions = result.record["institutions"]
    run = {
        "job": job.__dict__ | {"budget": job.budget.__dict__},
        "metric": metrics[job.budget.metric],
        "credit": {n: int(v.get("credit", 0)) for n, v in institutions.items()},
        "samples": {n: int(v["train_samples"]) for n, v in institutions.items()},
        "byzantine": list((result.record.get("byzantine") or {}).get("members", [])),
        "seconds": round(time.monotonic() - started, 1),
    }
    (Path(job.out) / "run.json").write_text(json.dumps(run, indent=1))
    return run


def jobs_for(args: argparse.Namespace, attacks: Sequence[str]) -> list[Job]:
    budgets = QUICK if args.quick else BUDGETS
    jobs = []
    for task in args.tasks:
        b = budgets[task]
        rules = args.rules or (list(RULE_SPECS) if task == "heart" else list(HAPT_RULES))
        seeds = range(args.seeds)
        for rule in rules:
            clean_seeds = range(max(args.seeds, 5 if task == "heart" and not args.quick else 0))
            for seed in clean_seeds:
                jobs.append(Job(task, rule, CLEAN, 0, seed, b, ""))
            for attack in attacks:
                for seed in seeds:
                    jobs.append(Job(task, rule, attack, b.byzantine, seed, b, ""))
    return [
        Job(
            j.task, j.rule, j.attack, j.byzantine, j.seed, j.budget,
            str(args.out / "robust-simulate" / j.task / j.rule / j.attack / f"seed-{j.seed}"),
        )
        for j in jobs
    ]  # fmt: skip


def share_key(task: str, byzantine: int) -> str:
    if byzantine == 0:
        return "0"
    return f"{byzantine / BUDGETS[task].peers:g}"


def mean_std(values: Sequence[float]) -> dict[str, float]:
    return {"mean": float(np.mean(values)), "std": float(np.std(values))}


def byzantine_share(run: Mapping[str, Any]) -> float:
    total = sum(run["credit"].values())
    bad = sum(run["credit"].get(n, 0) for n in run["byzantine"])
    return bad / total if total else 0.0


def summarize(runs: list[dict[str, Any]], seeds: int) -> dict[str, Any]:
    table: dict[str, Any] = {}
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = {}
    for run in runs:
        j = run["job"]
        key = (j["task"], j["rule"], j["attack"], share_key(j["task"], j["byzantine"]))
        groups.setdefault(key, []).append(run)
    for (task, rule, attack, share), group in sorted(groups.items()):
        group = [g for g in group if g["job"]["seed"] < seeds]
        cell = {
            "metric": mean_std([g["metric"] for g in group]),
            "byzantine_credit_share": float(np.mean([byzantine_share(g) for g in group])),
        }
        table.setdefault(task, {}).setdefault(rule, {})
        if attack == CLEAN:
            table[task][rule].setdefault("_clean", cell)
        else:
            table[task][rule].setdefault(attack, {})[share] = cell
    for rules in table.values():  # the clean run is every attack's share-0 cell
        for cells in rules.values():
            clean = cells.pop("_clean", None)
            for shares in cells.values():
                if clean is not None:
                    shares["0"] = clean
    return table


def pooled_heart(seeds: int, quick: bool) -> float:
    """Pooled training's accuracy on the pooled test set, mean over seeds (learning bench's
    budget: 50 epochs, Adam 1e-3, batch 4), the bar the clean federated runs must beat."""
    import torch

    torch.set_num_threads(1)
    from _learning_tasks import institutions, pooled_test, score, sites_of

    from consensus.task_spec import TrainingSettings
    from models.baselines import train_pooled
    from models.registry import init_model
    from models.tasks import get_task

    spec = get_task("heart").default_spec()
    data = institutions(spec)
    x_test, y_test = pooled_test(data)
    hp = TrainingSettings(epochs=2 if quick else 50, lr=1e-3, batch_size=4)
    accs = []
    for seed in range(seeds):
        model = train_pooled(init_model(spec.model.model_dump(), seed), sites_of(data), hp, seed)
        accs.append(score(model, x_test, y_test)["accuracy"])
    return float(np.mean(accs))


def main(argv: list[str] | None = None) -> int:
    from fedchain.attacks import attack_names

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--tasks", default="heart,hapt")
    parser.add_argument("--rules", default="", help="comma-separated (default: all for the task)")
    parser.add_argument("--attacks", default="", help="comma-separated (default: every one)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="tiny budgets for the tests")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    parser.add_argument(
        "--real-rounds",
        type=int,
        default=None,
        help="rounds of the real-process run (default 5; 0 skips it; --quick skips it)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="keep the runs an interrupted earlier run finished (their run.json under <out>)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="recompute the table, targets and plot from <out>/robust.meta.json's runs",
    )
    args = parser.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.rules = [r for r in args.rules.split(",") if r]
    unknown = [t for t in args.tasks if t not in BUDGETS] + [
        r for r in args.rules if r not in RULE_SPECS
    ]
    if unknown:
        parser.error(f"unknown task or rule: {unknown}; rules: {', '.join(RULE_SPECS)}")
    attacks = [a for a in args.attacks.split(",") if a] or attack_names()
    if args.report_only:
        return report(args, json.loads((args.out / "robust.meta.json").read_text()))
    jobs = jobs_for(args, attacks)
    started = time.perf_counter()
    runs: list[dict[str, Any]] = []
    ctx = get_context("spawn")
    print(f"{len(jobs)} simulations on {args.workers} worker(s)", file=sys.stderr, flush=True)
    done_before = [j for j in jobs if args.resume and (Path(j.out) / "run.json").is_file()]
    runs.extend(json.loads((Path(j.out) / "run.json").read_text()) for j in done_before)
    jobs = [j for j in jobs if j not in done_before]
    if done_before:
        print(f"{len(done_before)} runs kept from an earlier run (--resume)", file=sys.stderr)
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as pool:
        futures = {pool.submit(run_job, j): j for j in jobs}
        for done, fut in enumerate(as_completed(futures), 1):
            j = futures[fut]
            run = fut.result()
            runs.append(run)
            print(
                f"[{done}/{len(jobs)}] {j.task} {j.rule} {j.attack} b={j.byzantine} "
                f"seed {j.seed}: {run['metric']:.3f} ({run['seconds']:.0f} s, "
                f"{time.perf_counter() - started:.0f} s total)",
                file=sys.stderr,
                flush=True,
            )
    real_rounds = args.real_rounds if args.real_rounds is not None else (0 if args.quick else 5)
    real = None
    if real_rounds > 0:
        from _robust_real import run_real

        print("one run through real peer processes (heart, va scaling x100)", file=sys.stderr)
        real = run_real(args.out / "robust-real", real_rounds)
    meta = {
        "real_peers": real,
        "budgets": {t: (QUICK if args.quick else BUDGETS)[t].__dict__ for t in args.tasks},
        "rules": {r: RULE_SPECS[r] for r in (args.rules or RULE_SPECS)},
        "attacks": attacks,
        "seeds": args.seeds,
        "quick": args.quick,
        "workers": args.workers,
        "pooled_heart_accuracy": pooled_heart(1 if args.quick else 5, args.quick),
        "seconds_total": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
        "runs": runs,
    }
    return report(args, meta)


def report(args: argparse.Namespace, meta: dict[str, Any]) -> int:
    """Table, targets, JSON and plot from the runs in ``meta`` (fresh or read back)."""
    from _robust_report import render, targets, write_outputs

    runs = meta.pop("runs")
    table = summarize(runs, meta["seeds"])
    met = targets(table, runs, DEFAULT_RULE, {"heart": meta["pooled_heart_accuracy"]})
    real = meta.get("real_peers")
    if real:
        drop = real["accuracy_clean"] - real["accuracy_attacked"]
        met.append(
            (
                "real peers: 4 hospitals, va scaling x100, default rule: within 2 points of clean, "
                "attacker earns nothing",
                drop <= 0.02 and real["credit"][real["attacker"]] == 0 and real["replay_ok"],
                f"accuracy {100 * real['accuracy_attacked']:.1f} vs clean "
                f"{100 * real['accuracy_clean']:.1f}; credit {real['credit']}; "
                f"replay {'matches' if real['replay_ok'] else 'DIFFERS'}",
            )
        )
    write_outputs(args.out, table, runs, met, {**meta, "default_rule": DEFAULT_RULE})
    print(render(table))
    print("\nTargets:")
    for name, ok, detail in met:
        print(f"  [{'met' if ok else 'MISSED'}] {name}: {detail}")
    print(f"\nwrote {args.out / 'robust.json'}, robust.meta.json, robust.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
