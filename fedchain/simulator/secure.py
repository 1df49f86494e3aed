"""``fedchain simulate --secure-aggregation``: rounds of masked updates, in one process.

Each virtual institution trains from the round's global model, clips its change to the agreed
norm, encodes it in fixed point with its sample count and masks it toward every other member
(:mod:`consensus.secagg`).  ``dropouts`` members sit out each round (a rotating choice): the
others reveal only their pair seeds with them.  The aggregator sums the masked updates and
removes the dropped members' masks; each round is checked to equal fixed-point FedAvg of the
same changes bit for bit (FedchainError otherwise) before it becomes the next global model.

This path exercises the masking protocol and its cost on real tasks; the chain, content store
and gossip of :mod:`fedchain.simulator.run` are not involved.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from nacl.public import PrivateKey
from rich.console import Console

from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import (
    RoundKeys,
    check_mean,
    encode_with_weight,
    fixed_point_fedavg,
    mask_update,
    reveals_for,
    unmask_sum,
)
from consensus.secagg.state import apply_change, change_of
from consensus.task_spec import AggregationSpec, SecureAggregationSettings
from fedchain.errors import ConfigError, FedchainError
from fedchain.private_files import write_private_text
from fedchain.simulator.partitions import Population, population
from fedchain.simulator.run import output_dir, simulation_fields
from models.tasks import get_task
from models.tasks.determinism import use_deterministic_torch
from peer.round_state import StateDict

SIM_ADDRESS = "0x{:040x}"
"""Virtual institution k's address (only the ordering of pairs depends on it)."""


def derived_secret(seed: int, name: str) -> bytes:
    """A reproducible X25519 private key for a virtual institution (simulations only)."""
    return hashlib.sha256(f"fedchain-sim/x25519/{seed}/{name}".encode()).digest()


@dataclass(frozen=True)
class SecureSimulation:
    out_dir: Path
    record: dict[str, Any]
    final_weights: StateDict


def _dropped(names: list[str], round_no: int, dropouts: int) -> list[str]:
    """``dropouts`` members that sit out ``round_no``, rotating through the institutions."""
    start = (round_no - 1) * dropouts
    return [names[(start + k) % len(names)] for k in range(dropouts)]


def simulate_secure(
    task_name: str,
    peers: int,
    rounds: int,
    seed: int = 0,
    *,
    clip_norm: float,
    fraction_bits: int = 24,
    dropouts: int = 0,
    out: Path | None = None,
    console: Console | None = None,
    given_population: Population | None = None,
) -> SecureSimulation:
    """Run ``rounds`` securely aggregated FedAvg rounds of ``task_name`` among ``peers``."""
    if peers < 2 or rounds < 1:
        raise ConfigError("secure aggregation needs at least two peers and one round")
    if not 0 <= dropouts <= peers - 2:
        raise ConfigError(
            f"--dropouts must be in 0..{peers - 2} (two members must submit), got {dropouts}"
        )
    settings = SecureAggregationSettings(clip_norm=clip_norm, fraction_bits=fraction_bits)
    fp = FixedPoint(settings.clip_norm, settings.fraction_bits)
    use_deterministic_torch()
    started = time.monotonic()
    console = console or Console()
    out_dir = output_dir(out, "secure")
    task = get_task(task_name)
    pop = given_population or population(task, peers, seed)
    if len(pop.learners) != peers:
        raise ConfigError(f"the given population is not {peers} learners of {task_name}")
    spec = pop.spec.model_copy(
        update={"aggregation": AggregationSpec(rule="fedavg"), "secure_aggregation": settings}
    )
    type(spec).model_validate(spec.model_dump())  # the spec's own refusals apply
    learners = pop.learners
    names = list(learners)
    address = {n: SIM_ADDRESS.format(k + 1) for k, n in enumerate(names)}
    secret = {n: derived_secret(seed, n) for n in names}
    publics = {address[n]: bytes(PrivateKey(secret[n]).public_key) for n in names}
    fp.check_capacity(sum(ln.num_samples for ln in learners.values()))
    metric = task.primary_metric_for(spec)
    weights = next(iter(learners.values())).initial_weights()
    results: list[dict[str, Any]] = []
    for round_no in range(1, rounds + 1):
        t0 = time.monotonic()
        keys = RoundKeys(task_id=1, round=round_no, publics=publics)
        sitting_out = set(_dropped(names, round_no, dropouts))
        live = [n for n in names if n not in sitting_out]
        changes = {n: change_of(learners[n].train(weights, round_no), weights) for n in live}
        t1 = time.monotonic()
        masked = {
            address[n]: mask_update(
                encode_with_weight(fp, changes[n], learners[n].num_samples),
                address[n],
                secret[n],
                keys,
            )
            for n in live
        }
        t2 = time.monotonic()
        submitted = [address[n] for n in live]
        reveals = [r for n in live for r in reveals_for(address[n], secret[n], keys, submitted)]
        result = unmask_sum(fp, masked, reveals, keys)
        t3 = time.monotonic()
        total = sum(learners[n].num_samples for n in live)
        check_mean(fp, result, total)
        plain = fixed_point_fedavg(
            fp, [changes[n] for n in live], [learners[n].num_samples for n in live]
        )
        if plain.mean_change.tobytes() != result.mean_change.tobytes():
            raise FedchainError(
                f"round {round_no}: the unmasked sum differs from fixed-point "
                "FedAvg of the same updates"
            )
        weights = apply_change(weights, result.mean_change)
        per = {n: learners[n].evaluate(weights).get(metric) for n in names}
        values = [v for v in per.values() if v is not None]
        results.append(
            {
                "round": round_no,
                "submitted": live,
                "dropped": sorted(sitting_out),
                "reveals": len(reveals),
                "total_weight": result.total_weight,
                "equals_fixed_point_fedavg": True,
                "mean_change_norm": float(np.linalg.norm(result.mean_change)),
                "clipped": [
                    n for n in live if math.sqrt(float(changes[n] @ changes[n])) > clip_norm
                ],
                "metrics": {
                    "primary_metric": metric,
                    "mean_primary": sum(values) / len(values) if values else None,
                    "per_institution": per,
                },
                "seconds": {
                    "train": round(t1 - t0, 3),
                    "mask": round(t2 - t1, 3),
                    "unmask": round(t3 - t2, 3),
                },
            }
        )
        console.print(
            f"round {round_no}: {len(live)} masked updates, {len(sitting_out)} dropped, "
            f"aggregate = fixed-point FedAvg; mean {metric} "
            f"{results[-1]['metrics']['mean_primary']:.3f}"
        )
    record: dict[str, Any] = {
        "task": task_name,
        "simulation": {
            **simulation_fields(task_name, peers, rounds, seed, pop.partition),
            "dropouts": dropouts,
        },
        "secure_aggregation": settings.model_dump(),
        "parameters": int(next(iter(changes.values())).size),
        "rounds": results,
        "primary_metric": metric,
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    write_private_text(out_dir / "record.json", json.dumps(record, indent=2))
    return SecureSimulation(out_dir, record, weights)
