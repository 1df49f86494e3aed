"""``fedchain demo``: a local federation of hospitals, end to end, with a live view.

The demo plays the consortium's operator and an auditor at once: it starts the
chain and one Kubo per hospital, deploys, launches each hospital's peer as its
own OS process, and then only *watches the chain*, fetching each agreed
aggregate from IPFS to evaluate it on the pooled test set.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consensus.protocol import RoundStatus, default_quorum
from consensus.serialization import weights_from_bytes
from consensus.strategies.abc import StateDict
from consensus.task_spec import TaskSpec, TrainingSettings
from fedchain.errors import FedchainError, ServiceUnavailableError
from fedchain.interrupts import raise_if_interrupted
from fedchain.localnet.devnet import LocalFederation, TaskParams
from fedchain.private_files import private_dir, write_private_text
from models.datasets.heart import HOSPITALS, TabularSplit, load_heart_hospital
from models.tasks import InstitutionData, Learner, Samples, get_task, initial_weights
from models.tasks.learner import evaluate_weights
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient
from peer.records import History

log = logging.getLogger("fedchain.demo")

HEART_SPEC = get_task("heart").default_spec(
    name="heart-disease-logreg",
    training=TrainingSettings(epochs=5, lr=0.05, batch_size=16, seed=7, weight_decay=0.01),
)
ROUND_TIMEOUT = 300.0


@dataclass
class RoundResult:
    round: int
    aggregate_cid: str
    finalize_tx: str
    finalize_block: int
    participants: list[dict[str, Any]]
    metrics: dict[str, Any]
    seconds: float


@dataclass
class Pooled:
    """Each hospital's test split and their union, for evaluating shared models."""

    splits: dict[str, TabularSplit]
    x: np.ndarray = field(init=False)
    y: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.x = np.concatenate([s.x_test for s in self.splits.values()])
        self.y = np.concatenate([s.y_test for s in self.splits.values()])

    def metrics(self, spec: TaskSpec, weights: StateDict) -> dict[str, Any]:
        pooled = evaluate_weights(spec, weights, Samples(self.x, self.y))
        per = {
            n: evaluate_weights(spec, weights, Samples(s.x_test, s.y_test))
            for n, s in self.splits.items()
        }
        return {
            "pooled_accuracy": pooled["accuracy"],
            "pooled": pooled,
            "per_hospital_accuracy": {n: m["accuracy"] for n, m in per.items()},
        }


def _local_only(spec: TaskSpec, pooled: Pooled, rounds: int) -> dict[str, Any]:
    """Each hospital alone, trained for as many epochs as the federation ran in total."""
    out: dict[str, Any] = {}
    epochs = spec.training.epochs * rounds
    local_spec = spec.model_copy(
        update={"training": spec.training.model_copy(update={"epochs": epochs})}
    )
    for name, split in pooled.splits.items():
        data = InstitutionData(
            Samples(split.x_train, split.y_train), Samples(split.x_test, split.y_test)
        )
        learner = Learner(get_task(spec.task), local_spec, data, name)
        weights = learner.train(initial_weights(spec), round_no=0)
        own = learner.evaluate(weights)
        allx = evaluate_weights(spec, weights, Samples(pooled.x, pooled.y))
        out[name] = {"own_test_accuracy": own["accuracy"], "pooled_test_accuracy": allx["accuracy"]}
    return out


def _watch_round(
    fed: LocalFederation, client: FederationClient, round_no: int, progress: Progress, bar: Any
) -> None:
    deadline = time.monotonic() + ROUND_TIMEOUT
    while True:
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
    store: KuboContentStore,
    pooled: Pooled,
    round_no: int,
    seconds: float,
) -> RoundResult:
    event = client.finalized_event(fed.task_id, round_no)
    cid = cid_from_bytes(event.aggregate_cid)
    weights = weights_from_bytes(store.get(cid, timeout=60))
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
        metrics=pooled.metrics(HEART_SPEC, weights),
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


def _table(results: list[RoundResult], local: dict[str, Any]) -> Table:
    table = Table(title="fedchain demo: finalized rounds")
    for col in ("round", "participants", "aggregate CID", "finalize tx", "pooled acc", "seconds"):
        table.add_column(col)
    for r in results:
        table.add_row(
            str(r.round),
            str(len(r.participants)),
            r.aggregate_cid[:20] + "…",
            r.finalize_tx[:14] + "…",
            f"{r.metrics['pooled_accuracy']:.3f}",
            f"{r.seconds:.2f}",
        )
    return table


def _local_table(final: RoundResult | None, local: dict[str, Any]) -> Table:
    table = Table(title="federated vs local-only (accuracy)")
    for col in (
        "hospital",
        "local-only, own test",
        "local-only, pooled test",
        "federated, own test",
    ):
        table.add_column(col)
    for name, m in local.items():
        fed_own = final.metrics["per_hospital_accuracy"][name] if final else float("nan")
        table.add_row(
            name,
            f"{m['own_test_accuracy']:.3f}",
            f"{m['pooled_test_accuracy']:.3f}",
            f"{fed_own:.3f}",
        )
    return table


def run_demo(*, peers: int, rounds: int, chain: str, out: Path | None) -> int:
    console = Console(stderr=False)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = private_dir(out if out is not None else Path("runs") / stamp)
    names = list(HOSPITALS[:peers])
    pooled = Pooled({n: load_heart_hospital(n) for n in names})
    started = time.monotonic()
    results: list[RoundResult] = []
    quorum = default_quorum(peers)
    with LocalFederation(
        out_dir / "federation", names, chain=chain, process_record=out_dir / "processes.json"
    ) as fed:
        console.print(
            f"[bold]fedchain demo[/]: {peers} hospitals (quorum {quorum}), {rounds} rounds on "
            f"{chain}; PIDs and ports in {out_dir / 'processes.json'}",
            soft_wrap=True,
        )
        with console.status("starting chain, Kubo daemons, deploying the contract…"):
            fed.start(TaskParams(spec=HEART_SPEC, rounds=rounds, quorum=quorum))
        assert fed.deployer is not None
        client = fed.deployer
        store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
        console.print(f"contract {client.address} on chain {client.chain_id}, task {fed.task_id}")
        for name in names:
            fed.spawn_peer(name)
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task("waiting for peers", total=rounds)
            for round_no in range(1, rounds + 1):
                t0 = time.monotonic()
                _watch_round(fed, client, round_no, progress, bar)
                info = client.round_info(fed.task_id, round_no)
                if RoundStatus(info.status) is RoundStatus.FINALIZED:
                    results.append(
                        _round_result(fed, client, store, pooled, round_no, time.monotonic() - t0)
                    )
                progress.advance(bar)
        for name, code in fed.wait_peers_exit(timeout=120).items():
            if code not in (None, 0):
                log.warning("peer %s ended with status %s (see %s)", name, code, fed.root / "logs")
        store.close()
        _add_overhead(results, fed)
        chain_id, contract = client.chain_id, client.address
    local = _local_only(HEART_SPEC, pooled, rounds)
    record = {
        "chain_id": chain_id,
        "contract": contract,
        "task_spec": HEART_SPEC.model_dump(),
        "rounds": [r.__dict__ for r in results],
        "local_only": local,
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    write_private_text(out_dir / "record.json", json.dumps(record, indent=2))
    console.print(_table(results, local))
    console.print(_local_table(results[-1] if results else None, local))
    console.print(f"record written to {out_dir / 'record.json'}")
    if len(results) != rounds:
        raise FedchainError(f"only {len(results)} of {rounds} rounds were finalized")
    return 0
