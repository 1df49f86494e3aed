"""Aggregation throughput of every registered rule (part of ``scripts/bench/round``).

Each rule aggregates the same ``updates`` random float32 updates of ``params`` numbers twice;
the figure is input bytes / the faster run's seconds, and the two outputs' SHA-256 must match
(a rule that is not bit-identical across runs is reported as such, never hidden).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import torch

from consensus.strategies.abc import RoundContext, StateDict, Update
from consensus.strategies.registry import RULES, build_rule
from consensus.task_spec import AggregationSpec

RUNS = 2


def _digest(weights: StateDict) -> str:
    h = hashlib.sha256()
    for name in sorted(weights):
        h.update(name.encode())
        h.update(weights[name].contiguous().numpy().tobytes())
    return h.hexdigest()


def make_updates(updates: int, params: int, seed: int = 0) -> tuple[list[Update], StateDict]:
    """``updates`` members' flat updates around a shared previous model (all float32)."""
    gen = torch.Generator().manual_seed(seed)
    previous = {"w": torch.randn(params, generator=gen)}
    members = [
        Update(
            member=f"0x{i:040x}",
            weights={"w": previous["w"] + 0.01 * torch.randn(params, generator=gen)},
            num_samples=100 + i,
        )
        for i in range(updates)
    ]
    return members, previous


def measure(
    updates: int,
    params: int,
    rules: list[str] | None = None,
    on_rule: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """``{rule: {"gb_per_s": x, "seconds": s, "bit_identical": bool, "sha256": hex}}``;
    ``on_rule`` is given the results so far after each rule (a long run keeps what finished)."""
    members, previous = make_updates(updates, params)
    input_bytes = updates * params * 4
    ctx = RoundContext(round=1, previous=previous, seed=7)
    out: dict[str, Any] = {}
    for name in rules or sorted(RULES, key=lambda r: (r != "fedavg", r)):  # FedAvg first
        rule = build_rule(AggregationSpec(rule=name))
        times, digests = [], []
        for _ in range(RUNS):
            t0 = time.perf_counter()
            result = rule.aggregate(members, ctx)
            times.append(time.perf_counter() - t0)
            digests.append(_digest(result.weights))
            del result
        best = min(times)
        out[name] = {
            "gb_per_s": input_bytes / best / 1e9,
            "seconds": best,
            "bit_identical": len(set(digests)) == 1,
            "sha256": digests[0],
        }
        if on_rule is not None:
            on_rule(out)
    return out
