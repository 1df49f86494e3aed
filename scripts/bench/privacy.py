"""Privacy benchmark: what differential privacy costs in learning and buys against membership
inference, by simulation; and what encryption and secure aggregation cost per round.

    scripts/bench/privacy [--task hapt] [--epsilons 1,3,8,inf] [--seeds 3] [--rounds 10]
                          [--peers N] [--workers 2] [--quick] [--out runs/bench]
                          [--dp-only | --cost-only] [--cost-peers 4] [--cost-params 1M]
                          [--cost-rounds 9] [--cost-modes plain,encrypted,secagg]

Each cell is ``fedchain simulate`` (real peer nodes on the in-memory chain, content store and
gossip) with the task spec's ``privacy`` set to the target epsilon (``inf``: plain training,
the task's own settings), DP-SGD in every institution (Opacus; noise derived from the target
over the rounds, clipping ``--clip``).  DP-SGD wants other settings than plain training: its
noise is spread over a batch, so private runs use larger batches, a larger learning rate and
more local epochs (``--dp-batch-size``, ``--dp-lr``, ``--dp-epochs``, ``--clip``).  Defaults
from probes on HAPT, 6 institutions, 10 rounds, epsilon 3, seed 0 (pooled macro-F1): batch 256,
Adam 2e-2, clipping 0.5, 1 epoch 0.74; the same with 3 epochs 0.82, 5 epochs 0.83, 20 rounds
0.82, batch 512 0.77; 5 epochs with clipping 1.0 0.84 (2.0: 0.85, learning rate 5e-2: 0.58,
1e-2: 0.82).  The plain settings (batch 64, Adam 1e-3) gave 0.42 on one institution alone.
Reported per epsilon:

* the primary metric (macro-F1 for HAPT) of the agreed final model on the pooled test sets;
* a loss-threshold membership-inference attack on that model: the attacker scores each record
  by its loss (lower: more likely a training record); AUC of telling the institutions' training
  records from their held-out test records (0.5: no better than chance);
* the largest epsilon any institution actually spent (from its ``history.jsonl``).

The cost part (``_privacy_cost``) runs the round bench's real federation (Anvil at once, a
Kubo per institution, peer processes over libp2p; default 4 peers x 1M float32, 9 rounds, the
first left out) once per mode: ``plain``, ``encrypted`` (members-only weights) and ``secagg``
(secure aggregation), and reports median round seconds and bytes per peer and round.

Writes ``<out>/privacy.json`` shaped ``{"dp": {"<epsilon>": {"<metric>": {"mean", "std"},
"mia_auc": z}}, "cost": {"<mode>": {"round_s": s, "bytes_per_peer": n, "round_x_plain": r,
"bytes_x_plain": b}}}`` (epsilon written ``1``, ``3``, ``8`` or ``inf``), its
``privacy.meta.json`` (budgets, per-run figures, each mode's steps, timing) and
``privacy.png``.  ``--dp-only`` and ``--cost-only`` replace their own part and keep the other
from an earlier run; both files are replaced atomically.  ``--quick`` (tests): heart, 2 rounds,
1 epoch, 1 seed; cost 2 peers x 20k numbers, 1 round.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for entry in (str(ROOT), str(HERE)):
    if entry not in sys.path:
        sys.path.insert(0, entry)

import numpy as np  # noqa: E402


@dataclass(frozen=True)
class Job:
    task: str
    peers: int
    rounds: int
    epsilon: float
    clip: float
    dp_batch_size: int
    dp_lr: float
    dp_epochs: int
    seed: int
    out: str


def run_job(job: Job) -> dict[str, Any]:
    """One simulation and its figures (in a worker process: one torch thread)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from _pooled_test import pooled_full_test
    from rich.console import Console
    from sklearn.metrics import roc_auc_score

    from consensus.task_spec import PrivacySettings
    from fedchain.simulator.partitions import population
    from fedchain.simulator.run import simulate
    from models.tasks import Learner, get_task
    from models.tasks.learner import build_model
    from models.training import evaluate

    task = get_task(job.task)
    pop = population(task, job.peers, job.seed)
    privacy = None
    if not math.isinf(job.epsilon):
        privacy = PrivacySettings(target_epsilon=job.epsilon, max_grad_norm=job.clip)
        training = pop.spec.training.model_copy(
            update={"batch_size": job.dp_batch_size, "lr": job.dp_lr, "epochs": job.dp_epochs}
        )
        spec = pop.spec.model_copy(update={"training": training})
        pop = type(pop)(
            spec,
            {n: Learner(task, spec, ln.data, n) for n, ln in pop.learners.items()},
            pop.partition,
        )
    started = time.monotonic()
    shutil.rmtree(job.out, ignore_errors=True)
    result = simulate(
        job.task, job.peers, job.rounds, job.seed,
        out=Path(job.out), local_only=False, console=Console(stderr=True, quiet=True),
        given_population=pop, privacy=privacy,
    )  # fmt: skip
    assert result.final_weights is not None
    model = build_model(pop.spec)
    model.load_state_dict(dict(result.final_weights))
    metric = task.primary_metric_for(pop.spec)
    value = evaluate(model, pooled_full_test(task, pop.spec, job.peers, job.seed))[metric]
    # Each institution's own records as it holds them (its modalities): training vs held out.
    losses_in = np.concatenate([_losses(model, ln.data.train) for ln in pop.learners.values()])
    losses_out = np.concatenate([_losses(model, ln.data.test) for ln in pop.learners.values()])
    truth = np.concatenate([np.ones(len(losses_in)), np.zeros(len(losses_out))])
    auc = float(roc_auc_score(truth, -np.concatenate([losses_in, losses_out])))
    spent = [
        entry["epsilon"]
        for history in Path(job.out).glob("peers/*/history.jsonl")
        for entry in map(json.loads, history.read_text().splitlines())
        if "epsilon" in entry
    ]
    return {
        "job": asdict(job),
        "metric_name": metric,
        "metric": float(value),
        "training": pop.spec.training.model_dump(),
        "mia_auc": auc,
        "max_epsilon_spent": max(spent) if spent else None,
        "seconds": round(time.monotonic() - started, 1),
    }


def _losses(model: Any, data: Any) -> np.ndarray:
    """Per-record cross-entropy of ``model`` on ``data`` (log-sum-exp of the logits, stable)."""
    from models.training import predict_logits

    logits = predict_logits(model, data.x).astype(np.float64)
    labels = np.asarray(data.y)
    top = logits.max(axis=1, keepdims=True)
    log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
    return np.asarray(log_norm - logits[np.arange(len(labels)), labels.astype(int)])


def epsilon_key(epsilon: float) -> str:
    return "inf" if math.isinf(epsilon) else f"{epsilon:g}"


def summarize(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ``privacy.json`` shape from the runs."""
    dp: dict[str, Any] = {}
    for key in sorted({epsilon_key(r["job"]["epsilon"]) for r in runs}, key=float):
        group = [r for r in runs if epsilon_key(r["job"]["epsilon"]) == key]
        values = [r["metric"] for r in group]
        dp[key] = {
            group[0]["metric_name"]: {
                "mean": float(np.mean(values)),
                "std": float(np.std(values)),
            },
            "mia_auc": float(np.mean([r["mia_auc"] for r in group])),
            "max_epsilon_spent": max(
                (r["max_epsilon_spent"] for r in group if r["max_epsilon_spent"] is not None),
                default=None,
            ),
        }
    return dp


def render(table: Mapping[str, Any], meta: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    metric = dp_metric(table["dp"])
    out = Table(
        title=f"{meta['task']}: {meta['peers']} institutions, {meta['rounds']} rounds, "
        f"{meta['seeds']} seeds; under DP: clipping {meta['clip']:g}, batch "
        f"{meta['dp_batch_size']}, lr {meta['dp_lr']:g}"
    )
    for col in ("target epsilon", f"{metric} (mean ± std)", "MIA AUC", "max epsilon spent"):
        out.add_column(col, justify="right")
    for key, row in table["dp"].items():
        m = row[metric]
        spent = row["max_epsilon_spent"]
        out.add_row(
            key,
            f"{100 * m['mean']:.1f} ± {100 * m['std']:.1f}",
            f"{row['mia_auc']:.3f}",
            "-" if spent is None else f"{spent:.2f}",
        )
    Console().print(out)


def dp_metric(dp: Mapping[str, Any]) -> str:
    """The primary metric's name in a ``dp`` section (the one figure that is a mean and std)."""
    row: Mapping[str, Any] = next(iter(dp.values()))
    return str(next(k for k in row if k not in ("mia_auc", "max_epsilon_spent")))


def plot(table: Mapping[str, Any], path: Path) -> None:
    """The DP panels (metric, MIA AUC against epsilon) and the cost panel, for the parts
    ``table`` has; written to a temporary file first, then renamed over ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from _privacy_cost import plot_panel

    panels = (2 if table["dp"] else 0) + (1 if table["cost"] else 0)
    if not panels:
        return
    fig, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.6), squeeze=False)
    if table["cost"]:
        plot_panel(axes[0][-1], table["cost"])
    if table["dp"]:
        _plot_dp(table["dp"], axes[0][0], axes[0][1])
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}-tmp{path.suffix}")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)


def _plot_dp(dp: Mapping[str, Any], left: Any, right: Any) -> None:
    metric = dp_metric(dp)
    keys = list(dp)
    xs = range(len(keys))
    means = [100 * dp[k][metric]["mean"] for k in keys]
    stds = [100 * dp[k][metric]["std"] for k in keys]
    left.errorbar(xs, means, yerr=stds, marker="o", capsize=4)
    left.set_ylabel(f"{metric} (pooled test, %)")
    right.plot(xs, [dp[k]["mia_auc"] for k in keys], marker="o", color="tab:red")
    right.axhline(0.5, color="grey", linestyle=":", label="chance")
    right.set_ylabel("membership-inference AUC")
    right.legend()
    for ax in (left, right):
        ax.set_xticks(list(xs), keys)
        ax.set_xlabel("target epsilon")


def run_dp(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The DP simulations: the ``dp`` section and its meta figures."""
    try:
        epsilons = [float(e) for e in args.epsilons.split(",")]
    except ValueError:
        sys.exit(f"--epsilons takes numbers or inf separated by commas, got {args.epsilons!r}")
    if any(not e > 0 for e in epsilons):
        sys.exit("every epsilon must be > 0 (inf: no differential privacy)")
    from models.tasks import get_task

    task = get_task(args.task)
    peers = args.peers or len(task.builtin_institutions(task.default_spec()))
    work = args.out / "privacy-runs"
    jobs = [
        Job(args.task, peers, args.rounds, e, args.clip, args.dp_batch_size, args.dp_lr,
            args.dp_epochs, s,
            str(work / f"{epsilon_key(e)}-s{s}"))
        for e in epsilons
        for s in range(args.seeds)
    ]  # fmt: skip
    started = time.monotonic()
    runs: list[dict[str, Any]] = []
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(run_job, j): j for j in jobs}
        for done, future in enumerate(as_completed(futures), 1):
            j = futures[future]
            run = future.result()
            runs.append(run)
            print(
                f"[{done}/{len(jobs)}] epsilon {epsilon_key(j.epsilon)} seed {j.seed}: "
                f"{run['metric_name']} {run['metric']:.3f}, MIA AUC {run['mia_auc']:.3f} "
                f"({run['seconds']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    for run in runs:  # the record names its folders from the clone, not from this machine
        out = Path(run["job"]["out"]).resolve()
        run["job"]["out"] = str(out.relative_to(ROOT)) if out.is_relative_to(ROOT) else str(out)
    meta = {
        "task": args.task,
        "peers": peers,
        "rounds": args.rounds,
        "seeds": args.seeds,
        "clip": args.clip,
        "dp_batch_size": args.dp_batch_size,
        "dp_lr": args.dp_lr,
        "dp_epochs": args.dp_epochs,
        "metric": runs[0]["metric_name"],
        "quick": args.quick,
        "workers": args.workers,
        "wall_seconds": round(time.monotonic() - started, 1),
        "runs": runs,
    }
    return summarize(runs), meta


def run_cost(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """The three protocol modes through real federations: the ``cost`` section and its meta."""
    from _privacy_cost import MODES, QUICK, TARGETS, CostConfig, cost_section, run_modes
    from round import parse_params

    size = parse_params(args.cost_params)
    config = QUICK if args.quick else CostConfig(args.cost_peers, size, args.cost_rounds)
    started = time.monotonic()
    load_before = os.getloadavg()
    rows = run_modes(config, args.cost_modes)
    meta = {
        **asdict(config),
        "block_time": 0,
        "quick": args.quick,
        "modes": MODES,
        "targets_round_x_plain": TARGETS,
        "notes": "each mode is a round-bench cell (scripts/bench/round.py run_cell); round 1 "
        "left out when rounds >= 3; bytes are Kubo's (bitswap data or stats/bw, in+out) per "
        "peer per round, gossip not counted",
        "wall_seconds": round(time.monotonic() - started, 1),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "rows": rows,
    }
    return cost_section(rows), meta


def read_json(path: Path) -> dict[str, Any]:
    """An earlier run's file, or ``{}``; a file that is not a JSON object stops the bench."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        sys.exit(f"{path} is not JSON ({exc}); move it away or fix it, then run again")
    if not isinstance(data, dict):
        sys.exit(f"{path} holds no JSON object; move it away, then run again")
    return data


def merge(
    old_table: Mapping[str, Any],
    old_meta: Mapping[str, Any],
    dp: tuple[dict[str, Any], dict[str, Any]] | None,
    cost: tuple[dict[str, Any], dict[str, Any]] | None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The new ``privacy.json`` and meta: the parts that ran replace theirs, the others stay.
    The DP meta fields sit at the top level (as before the cost part existed), the cost's
    under ``cost``."""
    table = {"dp": dict(old_table.get("dp", {})), "cost": dict(old_table.get("cost", {}))}
    meta = {k: v for k, v in old_meta.items() if k != "cost_note"}
    if dp is not None:
        table["dp"] = dp[0]
        meta = {"cost": meta["cost"]} if "cost" in meta else {}
        meta.update(dp[1])
    if cost is not None:
        table["cost"], meta["cost"] = cost
    meta["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version()}
    return table, meta


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="hapt")
    parser.add_argument("--epsilons", default="1,3,8,inf")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--peers", type=int, default=None, help="default: the task's own")
    parser.add_argument("--clip", type=float, default=1.0, help="per-sample clipping norm")
    parser.add_argument("--dp-batch-size", type=int, default=256, help="batch size under DP")
    parser.add_argument("--dp-lr", type=float, default=0.02, help="learning rate under DP")
    parser.add_argument("--dp-epochs", type=int, default=5, help="local epochs per round under DP")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--dp-only", action="store_true", help="keep an earlier run's cost part")
    only.add_argument("--cost-only", action="store_true", help="keep an earlier run's dp part")
    parser.add_argument("--cost-peers", type=int, default=4, help="peers per cost federation")
    parser.add_argument("--cost-params", default="1M", help="model size: 14, 250k, 1M, 10M, ...")
    parser.add_argument("--cost-rounds", type=int, default=9, help="rounds per mode (>= 1)")
    parser.add_argument(
        "--cost-modes", default="plain,encrypted,secagg", help="modes, in the order they run"
    )
    parser.add_argument(
        "--quick", action="store_true", help="heart, 2 rounds, 1 seed; cost 2 peers x 20k, 1 round"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    args = parser.parse_args()
    if args.quick:
        args.task, args.rounds, args.seeds, args.epsilons = "heart", 2, 1, "3,inf"
        args.dp_epochs = 1
    if args.cost_rounds < 1 or args.cost_peers < 1:
        parser.error("--cost-rounds and --cost-peers must be >= 1")
    from _privacy_cost import MODES

    args.cost_modes = args.cost_modes.split(",")
    if set(args.cost_modes) - set(MODES) or len(set(args.cost_modes)) < len(args.cost_modes):
        parser.error(f"--cost-modes takes each of {', '.join(MODES)} at most once, "
                     f"separated by commas, got {','.join(args.cost_modes)!r}")  # fmt: skip
    from round import parse_params

    from fedchain.errors import ConfigError
    from models.tasks.synthetic import inputs_for

    try:
        inputs_for(parse_params(args.cost_params))
    except ConfigError as exc:  # a size the synthetic model cannot have
        parser.error(f"--cost-params {args.cost_params}: {exc}")
    except ValueError:
        parser.error(f"--cost-params takes a size such as 14, 250k or 1M, got {args.cost_params!r}")
    from fedchain.private_files import write_private_text

    out_json, out_meta = args.out / "privacy.json", args.out / "privacy.meta.json"
    old_table, old_meta = read_json(out_json), read_json(out_meta)
    dp = None if args.cost_only else run_dp(args)
    cost = None if args.dp_only else run_cost(args)
    table, meta = merge(old_table, old_meta, dp, cost)
    args.out.mkdir(parents=True, exist_ok=True)
    # Atomic replacement: a bench stopped while writing leaves the earlier files whole.
    write_private_text(out_json, json.dumps(table, indent=2) + "\n")
    write_private_text(out_meta, json.dumps(meta, indent=2) + "\n")
    plot(table, args.out / "privacy.png")
    if dp is not None and table["dp"]:
        render(table, meta)
    if cost is not None:  # where each mode's time goes, then the summary
        from round import print_table

        print_table(cost[1]["rows"])
    if table["cost"]:
        from _privacy_cost import render as render_cost

        render_cost(table["cost"], meta["cost"])
    print(f"\nwrote {out_json}, privacy.meta.json, privacy.png")
    failed = [m for m, r in (cost[1]["rows"] if cost else {}).items() if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    from peer.startup import terminate_as_interrupt

    with terminate_as_interrupt():  # a stopped bench stops its chains, Kubos and peers too
        raise SystemExit(main())
