"""``fedchain demo``: a local federation of institutions, end to end, with a live view.

The demo plays the consortium's operator and an auditor at once: it starts the chain and one
Kubo per institution, deploys, launches each institution's peer as its own OS process, and
then only *watches the chain*, fetching each agreed aggregate from IPFS to evaluate it on
every institution's test split and on their union. Any built-in task runs the same way
(``--task heart|hapt|breast``); :mod:`fedchain.localnet.plan` says who holds what.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consensus.protocol import RoundStatus, default_quorum
from consensus.serialization import agreed_model_from_bytes
from consensus.strategies.abc import StateDict
from fedchain.errors import FedchainError, ServiceUnavailableError
from fedchain.interrupts import raise_if_interrupted
from fedchain.localnet.devnet import LocalFederation, TaskParams
from fedchain.localnet.plan import FederationPlan, plan_for
from fedchain.private_files import private_dir, write_private_text
from models.tasks import (
    InstitutionData,
    Samples,
    initial_weights,
    reference_weights,
    use_deterministic_torch,
)
from models.tasks.learner import evaluate_weights, train_alone
from models.tasks.local_data import LocalData
from peer.confidential.envelope import is_sealed, open_envelope
from peer.content.abc import ContentStore
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient
from peer.records import History

log = logging.getLogger("fedchain.demo")

ROUND_TIMEOUT = 600.0


@dataclass
class RoundResult:
    round: int
    aggregate_cid: str
    finalize_tx: str
    finalize_block: int
    participants: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: float


def _concat(samples: list[Samples]) -> Samples:
    first = samples[0].x
    y = np.concatenate([s.y for s in samples])
    if isinstance(first, np.ndarray):
        return Samples(np.concatenate([np.asarray(s.x) for s in samples]), y)
    keys = list(first)
    x = {
        k: np.concatenate([s.x[k] for s in samples if not isinstance(s.x, np.ndarray)])
        for k in keys
    }
    return Samples(x, y)


class Evaluation:
    """The auditor's view: every institution's test split (as it holds it) and their union.

    The union is loaded with every modality the task has, so an institution without a sensor
    still counts in the pooled figure.
    """

    def __init__(self, plan: FederationPlan) -> None:
        self.plan = plan
        self.metric = plan.primary_metric
        self.data: dict[str, InstitutionData] = {
            n: plan.task.load(plan.spec, LocalData.model_validate(plan.data[n]))
            for n in plan.institutions
        }
        full = [plan.task.load(plan.spec, LocalData(partition=n)).test for n in plan.institutions]
        self.pooled = _concat(full)

    def metrics(self, weights: StateDict) -> dict[str, Any]:
        spec = self.plan.spec
        pooled = evaluate_weights(spec, weights, self.pooled)
        per = {n: evaluate_weights(spec, weights, d.test) for n, d in self.data.items()}
        return {
            "primary_metric": self.metric,
            "pooled_primary": pooled[self.metric],
            "pooled": pooled,
            "per_institution": {n: m[self.metric] for n, m in per.items()},
        }

    def local_only(self, rounds: int) -> dict[str, dict[str, float]]:
        """Each institution alone, trained for as many epochs as the federation ran in total."""
        spec = self.plan.spec
        start = initial_weights(spec)
        out: dict[str, dict[str, float]] = {}
        for name, data in self.data.items():
            weights = train_alone(self.plan.task, spec, data, name, start, rounds)
            own = evaluate_weights(spec, weights, data.test)
            out[name] = {
                "own_test": own[self.metric],
                "pooled_test": evaluate_weights(spec, weights, self.pooled)[self.metric],
            }
        return out


def _peak_rss_mb(pid: int | None) -> float | None:
    """A live process's peak resident memory (VmHWM) in MiB, or None once it has gone."""
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """Each peer process's peak memory, sampled while the demo watches (VmHWM only grows)."""

    def __init__(self) -> None:
        self.peak_mb: dict[str, float] = {}

    def sample(self, fed: LocalFederation) -> None:
        for name, proc in fed.peers.items():
            mb = _peak_rss_mb(proc.pid)
            if mb is not None:
                self.peak_mb[name] = max(mb, self.peak_mb.get(name, 0.0))


def _watch_round(
    fed: LocalFederation,
    client: FederationClient,
    round_no: int,
    progress: Progress,
    bar: Any,
    memory: PeakMemory,
) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT
    while True:
        memory.sample(fed)
        info = client.round_info(fed.task_id, round_no)
        status = RoundStatus(info.status)
        progress.update(
            bar,
            description=f"round {round_no}: {status.name.lower()}, "
            f"{info.submissions}/{info.eligible} updates",
        )
        if status in (RoundStatus.FINALIZED, RoundStatus.FAILED):
            return
        for name, proc in fed.peers.items():
            if proc.returncode not in (None, 0):
                raise ServiceUnavailableError(
                    f"peer {name} exited with status {proc.returncode}; "
                    f"last lines of {proc.log_path}:\n{proc.log_tail()}"
                )
        if time.monotonic() > deadline:
            raise ServiceUnavailableError(
                f"round {round_no} did not finish within {ROUND_TIMEOUT:.0f} s; "
                f"see the peer logs under {fed.root / 'logs'}"
            )
        raise_if_interrupted()
        time.sleep(0.05)


def _round_result(
    fed: LocalFederation,
    client: FederationClient,
    store: ContentStore,
    evaluation: Evaluation,
    round_no: int,
    seconds: float,
) -> RoundResult:
    event = client.finalized_event(fed.task_id, round_no)
    cid = cid_from_bytes(event.aggregate_cid)
    data = store.get(cid, timeout=60)
    if is_sealed(data):  # members-only: the auditor opens it with the federation's audit key
        data = open_envelope(data, fed.audit_secret())
    weights = agreed_model_from_bytes(data, reference=reference_weights(evaluation.plan.spec))
    participants = [
        {"address": s.member, "update_cid": cid_from_bytes(s.cid), "num_samples": s.num_samples}
        for s in client.submissions(fed.task_id, round_no)
    ]
    return RoundResult(
        round=round_no,
        aggregate_cid=cid,
        finalize_tx=event.tx_hash,
        finalize_block=event.block_number,
        participants=participants,
        metrics=evaluation.metrics(weights),
        seconds=round(seconds, 3),
    )


def _add_overhead(results: list[RoundResult], fed: LocalFederation) -> None:
    """Per round, from the peers' own records: wall time, local training and everything else.

    A peer's round runs from the moment it sees the round open to the moment it sees it end,
    so it excludes process start-up; the demo's own view lags while it evaluates models.
    The peers are other processes: their typed round records are read back from history.jsonl.
    """
    per_round: dict[int, list[Mapping[str, float]]] = {}
    for h in fed.hospitals:
        for record in History(h.home / "state").records():
            per_round.setdefault(record.round, []).append(record.seconds)
    for r in results:
        secs = per_round.get(r.round, [])
        if secs:
            r.seconds = round(float(np.mean([s.get("round", r.seconds) for s in secs])), 3)
            r.metrics["train_seconds_mean"] = round(
                float(np.mean([s.get("train", 0.0) for s in secs])), 3
            )
            r.metrics["protocol_overhead_seconds_mean"] = round(
                float(np.mean([s.get("overhead", 0.0) for s in secs])), 3
            )


def _table(results: list[RoundResult], metric: str) -> Table:
    table = Table(title="fedchain demo: finalized rounds")
    for col in ("round", "participants", "aggregate CID", "finalize tx", f"pooled {metric}", "s"):
        table.add_column(col)
    for r in results:
        table.add_row(
            str(r.round),
            str(len(r.participants)),
            r.aggregate_cid[:20] + "…",
            r.finalize_tx[:14] + "…",
            f"{r.metrics['pooled_primary']:.3f}",
            f"{r.seconds:.2f}",
        )
    return table


def _institutions(
    plan: FederationPlan,
    evaluation: Evaluation,
    final: RoundResult | None,
    local: dict[str, dict[str, float]],
    memory: PeakMemory,
) -> dict[str, dict[str, Any]]:
    """Per institution: what it holds, local-only against federated, the peer's peak memory."""
    out: dict[str, dict[str, Any]] = {}
    for name, data in evaluation.data.items():
        fed_own = final.metrics["per_institution"][name] if final else float("nan")
        peak = memory.peak_mb.get(name)
        out[name] = {
            "modalities": list(data.modalities),
            "train_samples": data.num_samples,
            "test_samples": data.test.size,
            "local_only_own_test": local[name]["own_test"],
            "local_only_pooled_test": local[name]["pooled_test"],
            "federated_own_test": fed_own,
            "peer_peak_rss_mb": round(peak, 1) if peak is not None else None,
        }
    return out


def _institution_table(per: dict[str, dict[str, Any]], metric: str) -> Table:
    table = Table(title=f"federated vs local-only ({metric} on each institution's own test split)")
    for col in ("institution", "modalities", "train", "local-only", "federated", "peer peak MB"):
        table.add_column(col)
    for name, m in per.items():
        peak = m["peer_peak_rss_mb"]
        table.add_row(
            name,
            "+".join(m["modalities"]) or "-",
            str(m["train_samples"]),
            f"{m['local_only_own_test']:.3f}",
            f"{m['federated_own_test']:.3f}",
            "-" if peak is None else f"{peak:.0f}",
        )
    return table


def run_demo(
    *, task: str = "heart", peers: int | None, rounds: int, chain: str, out: Path | None
) -> int:
    plan = plan_for(task, peers)  # a bad --task or --peers fails before anything starts
    # the demo shows members-only weights: IPFS holds only sealed content
    spec = plan.spec.model_copy(update={"confidentiality": "members"})
    # The auditor's evaluations and local-only baselines run like the peers train: one torch
    # thread (on two shared cores, two threads made HAPT's local training 25x slower).
    use_deterministic_torch()
    console = Console(stderr=False)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = private_dir(out if out is not None else Path("runs") / stamp)
    names = list(plan.institutions)
    with console.status(f"loading each institution's {task} data…"):
        evaluation = Evaluation(plan)
    started = time.monotonic()
    results: list[RoundResult] = []
    memory = PeakMemory()
    quorum = default_quorum(len(names))
    with LocalFederation(
        out_dir / "federation",
        names,
        chain=chain,
        process_record=out_dir / "processes.json",
        data=plan.data,
    ) as fed:
        console.print(
            f"[bold]fedchain demo[/]: task {task}, {len(names)} institutions (quorum {quorum}), "
            f"{rounds} rounds on {chain}; PIDs and ports in {out_dir / 'processes.json'}",
            soft_wrap=True,
        )
        with console.status("starting chain, Kubo daemons, deploying the contract…"):
            fed.start(
                TaskParams(
                    spec=spec,
                    rounds=rounds,
                    quorum=quorum,
                    max_samples=plan.max_samples,
                )
            )
        assert fed.deployer is not None
        client = fed.deployer
        console.print(f"contract {client.address} on chain {client.chain_id}, task {fed.task_id}")
        for name in names:
            fed.spawn_peer(name)
        with (
            KuboContentStore(fed.hospitals[0].kubo.api_multiaddr) as store,
            Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TimeElapsedColumn(),
                console=console,
            ) as progress,
        ):
            bar = progress.add_task("waiting for peers", total=rounds)
            for round_no in range(1, rounds + 1):
                t0 = time.monotonic()
                _watch_round(fed, client, round_no, progress, bar, memory)
                info = client.round_info(fed.task_id, round_no)
                if RoundStatus(info.status) is RoundStatus.FINALIZED:
                    results.append(
                        _round_result(
                            fed, client, store, evaluation, round_no, time.monotonic() - t0
                        )
                    )
                progress.advance(bar)
        memory.sample(fed)
        for name, code in fed.wait_peers_exit(timeout=120).items():
            if code not in (None, 0):
                log.warning("peer %s ended with status %s (see %s)", name, code, fed.root / "logs")
        _add_overhead(results, fed)
        chain_id, contract = client.chain_id, client.address
    with console.status("training each institution's local-only model for comparison…"):
        local = evaluation.local_only(rounds)
    per = _institutions(plan, evaluation, results[-1] if results else None, local, memory)
    record = {
        "task": task,
        "chain_id": chain_id,
        "contract": contract,
        "task_spec": spec.model_dump(),
        "primary_metric": plan.primary_metric,
        "rounds": [r.__dict__ for r in results],
        "institutions": per,
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    write_private_text(out_dir / "record.json", json.dumps(record, indent=2))
    console.print(_table(results, plan.primary_metric))
    console.print(_institution_table(per, plan.primary_metric))
    console.print(f"record written to {out_dir / 'record.json'}")
    from fedchain.ops.report import write_report

    console.print(f"report written to {write_report(out_dir)}", soft_wrap=True)
    if len(results) != rounds:
        raise FedchainError(f"only {len(results)} of {rounds} rounds were finalized")
    return 0
