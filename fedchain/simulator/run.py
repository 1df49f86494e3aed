"""``fedchain simulate``: a whole federation of one built-in task, in one process.

:func:`simulate` gives every virtual institution its own built-in partition, deploys an
in-memory federation, and drives one real :class:`~peer.node.PeerNode` per institution
(:mod:`fedchain.simulator.federation`).  It writes what the demo writes: each institution's
``history.jsonl`` (``<out>/peers/<name>/``) and a ``record.json`` summary with the agreed
aggregate of every round and, per institution, the task's primary metric of the federated
model against a model trained on the institution's data alone.
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

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from consensus.protocol import RoundStatus
from consensus.serialization import agreed_model_from_bytes
from consensus.task_spec import AggregationSpec, EncodingSpec, PrivacySettings
from fedchain.attacks import Attack, get_attack
from fedchain.errors import ConfigError, FedchainError
from fedchain.private_files import private_dir, write_private_text
from fedchain.simulator.byzantine import make_byzantine
from fedchain.simulator.federation import TaskTiming, VirtualFederation
from fedchain.simulator.partitions import Population, population
from models.tasks import Learner, get_task
from models.tasks.determinism import use_deterministic_torch
from models.tasks.learner import train_alone
from peer.content.cid import cid_from_bytes
from peer.node import LocalLearner
from peer.records import RoundRecord
from peer.round_state import StateDict

log = logging.getLogger("fedchain.simulator")


@dataclass
class _Metrics:
    """Observer: each institution's local test metrics of every agreed model."""

    by_round: dict[int, dict[str, dict[str, float | None]]] = field(default_factory=dict)
    left_out: dict[int, dict[str, str]] = field(default_factory=dict)
    """Per round, the updates any aggregating institution left out, with the reasons."""

    def observer(self, name: str) -> _InstitutionMetrics:
        return _InstitutionMetrics(self, name)


@dataclass
class _InstitutionMetrics:
    sink: _Metrics
    name: str

    def round_finished(self, record: RoundRecord) -> None:
        if record.local_test is not None:
            self.sink.by_round.setdefault(record.round, {})[self.name] = dict(record.local_test)
        if record.left_out:
            self.sink.left_out.setdefault(record.round, {}).update(record.left_out)


@dataclass(frozen=True)
class SimulationResult:
    out_dir: Path
    aggregate_cids: list[str]
    """The agreed aggregate of each finalized round, in round order."""
    record: dict[str, Any]
    wall_seconds: float
    final_weights: StateDict | None = None
    """The agreed aggregate of the last finalized round (what every peer ends with)."""


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _summary(record: Mapping[str, Any], metric: str) -> Table:
    sim = record["simulation"]
    table = Table(
        title=f"{sim['task']}: {sim['peers']} peers, {len(record['rounds'])} rounds, "
        f"seed {sim['seed']} ({metric}, own test split)"
    )
    for col in ("institution", "federated", "local only"):
        table.add_column(col)
    for name, v in record["institutions"].items():
        table.add_row(name, _fmt(v["federated_own_test"]), _fmt(v["local_only_own_test"]))
    return table


def _mean(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else None


def output_dir(out: Path | None, prefix: str) -> Path:
    """``out``, or ``runs/<prefix>-<UTC time>``, created private to the user."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return private_dir(out if out is not None else Path("runs") / f"{prefix}-{stamp}")


def simulation_fields(
    task_name: str, peers: int, rounds: int, seed: int, partition: str
) -> dict[str, Any]:
    """The ``simulation`` part of a ``record.json``: what to pass to run it again."""
    return {
        "task": task_name,
        "peers": peers,
        "rounds": rounds,
        "seed": seed,
        "partition": partition,
    }


def _local_only(
    learners: Mapping[str, Learner], initial: Mapping[str, Any], rounds: int, metric: str
) -> dict[str, float | None]:
    """Each institution alone, trained for as many epochs as the federation ran in total
    (as the demo does), from the same initial model, on its own test split."""
    out: dict[str, float | None] = {}
    for name, learner in learners.items():
        weights = train_alone(learner.task, learner.spec, learner.data, name, initial, rounds)
        out[name] = learner.evaluate(weights).get(metric)
    return out


def _attack(
    attack: str | Attack | None, params: Mapping[str, Any] | None, byzantine: int
) -> Attack | None:
    """The attack the Byzantine members play; ConfigError when the options do not fit."""
    if byzantine < 0:
        raise ConfigError(f"--byzantine must be >= 0, got {byzantine}")
    if attack is None:
        if byzantine or params:
            raise ConfigError("--byzantine and --attack-param need --attack NAME")
        return None
    if byzantine == 0:
        raise ConfigError("--attack needs --byzantine K with K >= 1 Byzantine members")
    if isinstance(attack, Attack):
        if params:
            raise ConfigError("attack parameters go with an attack name, not an Attack object")
        return attack
    return get_attack(attack, **dict(params or {}))


def _with_spec(pop: Population, **fields: object) -> Population:
    """``pop`` with some of its spec's fields replaced (the learners hold the new spec too)."""
    spec = pop.spec.model_copy(update=fields)
    learners = {n: Learner(ln.task, spec, ln.data, n) for n, ln in pop.learners.items()}
    return Population(spec, learners, pop.partition)


def _epsilon_spent(fed: VirtualFederation, name: str) -> float:
    """The epsilon institution ``name`` committed on the chain with its latest update."""
    return fed.deployer.privacy_spent_of(fed.task_id, fed.peers[name].identity.address)[1] / 1000


def simulate(
    task_name: str,
    peers: int,
    rounds: int,
    seed: int = 0,
    *,
    out: Path | None = None,
    gossip: bool = True,
    local_only: bool = True,
    console: Console | None = None,
    given_population: Population | None = None,
    attack: str | Attack | None = None,
    attack_params: Mapping[str, Any] | None = None,
    byzantine: int = 0,
    aggregation: AggregationSpec | None = None,
    encoding: EncodingSpec | None = None,
    privacy: PrivacySettings | None = None,
) -> SimulationResult:
    """Run ``rounds`` rounds of ``task_name`` among ``peers`` virtual institutions.

    Reproducible: the same arguments give the same chain, the same aggregate CIDs and the same
    records (torch runs deterministic, one thread).  ``given_population`` replaces the default
    population (``partitions.population(task, peers, seed)``): the caller's spec and learners.

    ``byzantine`` members, chosen from ``seed`` (:mod:`fedchain.simulator.byzantine`), play
    ``attack`` (a registered name with ``attack_params``, or an Attack); ``record.json`` names
    them under ``"byzantine"``.  ``aggregation`` replaces the spec's aggregation rule,
    ``encoding`` its update encoding (``consensus.codecs``).
    """
    if peers < 1 or rounds < 1:
        raise ConfigError("a simulation needs at least one peer and one round")
    chosen_attack = _attack(attack, attack_params, byzantine)
    use_deterministic_torch()
    started = time.monotonic()
    console = console or Console()
    out_dir = output_dir(out, "simulate")
    task = get_task(task_name)
    if given_population is not None:
        pop = given_population
        if len(pop.learners) != peers or pop.spec.task != task_name:
            raise ConfigError(f"the given population is not {peers} learners of {task_name}")
    else:
        with console.status(f"loading {peers} partitions of {task_name}…"):
            pop = population(task, peers, seed)
    if aggregation is not None:
        pop = _with_spec(pop, aggregation=aggregation)
    if encoding is not None:
        pop = _with_spec(pop, encoding=encoding)
    if privacy is not None:
        pop = _with_spec(pop, privacy=privacy)
    spec, learners = pop.spec, pop.learners
    metric = task.primary_metric_for(spec)
    names = list(learners)
    initial = next(iter(learners.values())).initial_weights()
    metrics = _Metrics()
    bad = (
        make_byzantine(learners, chosen_attack, byzantine, seed)
        if chosen_attack is not None
        else None
    )
    playing: dict[str, LocalLearner] = dict(learners)
    if bad is not None:
        playing.update(bad.learners)
        log.warning("Byzantine members %s play %s", bad.members, bad.attack.describe())
    fed = VirtualFederation(
        out_dir,
        spec,
        playing,
        initial,
        TaskTiming(rounds=rounds),
        seed=seed,
        gossip=gossip,
        observers=lambda name: [metrics.observer(name)],
        byzantine=bad.members if bad is not None else (),
    )
    if bad is not None:
        bad.bind(fed)
    fed.start_all()
    round_seconds: dict[int, float] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} rounds"),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(f"{task_name}, {peers} peers", total=rounds)
        t_round = time.monotonic()
        seen = 0
        while fed.running():
            if not fed.step_all():
                fed.advance()
            task_info = fed.deployer.task(fed.task_id)
            ended = task_info.current_round - (0 if task_info.completed else 1)
            failed = ended - task_info.finalized_rounds
            if failed > max(3, rounds):
                raise FedchainError(
                    f"{failed} rounds failed without finalizing ({task_info.finalized_rounds} "
                    f"of {rounds} finalized); the peers' log says why (e.g. no quorum)"
                )
            while seen < ended:
                seen += 1
                now = time.monotonic()
                round_seconds[seen] = now - t_round
                t_round = now
                finalized = task_info.finalized_rounds
                progress.update(bar, completed=finalized)
                value = _mean(
                    list(metrics.by_round.get(seen, {}).get(n, {}).get(metric) for n in names)
                )
                shown = f", mean {metric} {value:.3f}" if value is not None else ""
                progress.update(
                    bar,
                    description=(
                        f"{task_name}, {peers} peers: round {seen} "
                        f"{round_seconds[seen]:.1f} s{shown}"
                    ),
                )
    stopped = {n: str(p.error) for n, p in fed.peers.items() if p.error is not None}
    if stopped:
        raise FedchainError(f"virtual peers stopped on errors: {stopped}")
    results: list[dict[str, Any]] = []
    cids: list[str] = []
    for round_no in range(1, fed.deployer.task(fed.task_id).current_round + 1):
        info = fed.deployer.round_info(fed.task_id, round_no)
        if info.status is not RoundStatus.FINALIZED:
            continue
        event = fed.deployer.finalized_event(fed.task_id, round_no)
        cid = cid_from_bytes(event.aggregate_cid)
        cids.append(cid)
        per = {n: m.get(metric) for n, m in metrics.by_round.get(round_no, {}).items()}
        results.append(
            {
                "round": round_no,
                "aggregate_cid": cid,
                "finalize_tx": event.tx_hash,
                "finalize_block": event.block_number,
                "participants": [
                    {
                        "address": s.member,
                        "update_cid": cid_from_bytes(s.cid),
                        "num_samples": s.num_samples,
                    }
                    for s in fed.deployer.submissions(fed.task_id, round_no)
                ],
                "left_out": metrics.left_out.get(round_no, {}),
                "metrics": {
                    "primary_metric": metric,
                    "mean_primary": _mean(list(per.values())),
                    "per_institution": per,
                },
                "seconds": round(round_seconds.get(round_no, 0.0), 3),
            }
        )
    alone: dict[str, float | None] = {}
    if local_only:
        with console.status("training the local-only baselines…"):
            alone = _local_only(learners, initial, rounds, metric)
    final = results[-1]["metrics"]["per_institution"] if results else {}
    record: dict[str, Any] = {
        "task": task_name,
        "simulation": simulation_fields(task_name, peers, rounds, seed, pop.partition),
        "byzantine": bad.record(fed) if bad is not None else None,
        "chain_id": fed.deployer.chain_id,
        "contract": fed.deployer.address,
        "task_spec": spec.model_dump(),
        "rounds": results,
        "primary_metric": metric,
        "institutions": {
            n: {
                "modalities": list(learners[n].data.modalities),
                "train_samples": learners[n].num_samples,
                "test_samples": learners[n].data.test.size,
                "local_only_own_test": alone.get(n),
                "federated_own_test": final.get(n),
                "credit": fed.deployer.credit_of(fed.peers[n].identity.address),
                "epsilon_spent": _epsilon_spent(fed, n) if spec.privacy is not None else None,
            }
            for n in names
        },
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    write_private_text(out_dir / "record.json", json.dumps(record, indent=2))
    console.print(_summary(record, metric))
    if len(results) != rounds:
        raise FedchainError(f"only {len(results)} of {rounds} rounds were finalized")
    first = fed.peers[names[0]]
    agreed = agreed_model_from_bytes(
        first.content.get(cids[-1], timeout=5.0), reference=first.learner.reference_weights()
    )
    return SimulationResult(out_dir, cids, record, record["wall_seconds"], agreed)
