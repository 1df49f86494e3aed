"""The ``cost`` part of ``scripts/bench/privacy``: what members-only encryption and secure
aggregation add to a round, from real peer processes.

Each mode is one cell of the round bench (:func:`round.run_cell`: Anvil mining at once, one Kubo
per institution, one ``fedchain peer run`` per institution, the ``synthetic-bench`` model, FedAvg,
quorum = every peer) with only the task spec's protocol fields changed, so the three federations
differ in nothing else:

* ``plain``: updates and aggregates are safetensors in the private swarm;
* ``encrypted``: ``confidentiality = "members"`` (every update and aggregate sealed to the
  members' and the auditor's X25519 keys);
* ``secagg``: ``secure_aggregation`` on (clipped fixed-point changes masked toward every other
  member; uint64 residues, so twice the bytes of float32).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MODES: dict[str, dict[str, Any]] = {
    "plain": {},
    "encrypted": {"confidentiality": "members"},
    "secagg": {"secure_aggregation": {"clip_norm": 5.0}},
}
"""Mode name -> the TaskSpec fields it sets on top of the round bench's spec."""

TARGETS = {"encrypted": 1.10, "secagg": 2.0}
"""Round time against plain the issue aims for at 1M parameters (shown, never asserted)."""


@dataclass(frozen=True)
class CostConfig:
    peers: int = 4
    params: int = 1_000_000
    rounds: int = 9
    """Round 1 (the peers' start-up) is left out of the figures when there are 3 or more."""


QUICK = CostConfig(peers=2, params=20_000, rounds=1)
"""Tests: big enough that updates outweigh protocol traffic (masked residues show as bytes)."""


def run_modes(config: CostConfig, modes: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """Each mode's full round-bench row (``error`` instead if its federation failed)."""
    from round import params_label, run_cell

    rows: dict[str, dict[str, Any]] = {}
    for mode in modes or list(MODES):
        print(f"cost {mode}: {config.peers} peers x {params_label(config.params)}, "
              f"{config.rounds} rounds ...", flush=True)  # fmt: skip
        try:
            with tempfile.TemporaryDirectory(prefix=f"fedchain-bench-privacy-{mode}-") as tmp:
                rows[mode] = run_cell(
                    config.peers, config.params, 0, config.rounds, Path(tmp), MODES[mode]
                )
        except (RuntimeError, TimeoutError, OSError) as exc:
            rows[mode] = {"error": str(exc)[:2000]}
            print(f"cost {mode}: FAILED: {exc}", flush=True)
        else:
            row = rows[mode]
            print(f"cost {mode}: round median {row['round_s']['median']:.2f} s, "
                  f"{row['bytes_per_peer'] / 1e6:.2f} MB/peer/round", flush=True)  # fmt: skip
    return rows


def cost_section(rows: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The ``cost`` part of ``privacy.json``: per mode the median round time, bytes per peer
    and round, and both against plain (when plain ran); in :data:`MODES`'s order, whatever
    order they ran in."""
    section: dict[str, dict[str, Any]] = {}
    plain = rows.get("plain", {})
    for mode in MODES:
        row = rows.get(mode, {"error": "not run"})
        if "error" in row:
            continue
        entry: dict[str, Any] = {
            "round_s": round(row["round_s"]["median"], 3),
            "bytes_per_peer": row["bytes_per_peer"],
        }
        if "error" not in plain and "round_s" in plain:
            entry["round_x_plain"] = round(row["round_s"]["median"] / plain["round_s"]["median"], 3)
            entry["bytes_x_plain"] = round(row["bytes_per_peer"] / plain["bytes_per_peer"], 3)
        section[mode] = entry
    return section


def render(section: Mapping[str, Mapping[str, Any]], config: Mapping[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Table(
        title=f"Privacy cost per round: {config['peers']} peers x {config['params']:,} float32, "
        f"instant chain, {config['rounds']} rounds (medians over peers x rounds)"
    )
    for col in ("mode", "round s", "MB/peer/round", "round x plain", "bytes x plain", "target"):
        out.add_column(col, justify="right")
    for mode, row in section.items():
        target = TARGETS.get(mode)
        out.add_row(
            mode,
            f"{row['round_s']:.2f}",
            f"{row['bytes_per_peer'] / 1e6:.2f}",
            f"{row['round_x_plain']:.2f}" if "round_x_plain" in row else "-",
            f"{row['bytes_x_plain']:.2f}" if "bytes_x_plain" in row else "-",
            "-" if target is None else f"<= {target:.2f}",
        )
    Console().print(out)


def plot_panel(ax: Any, section: Mapping[str, Mapping[str, Any]]) -> None:
    """Round seconds per mode as bars, MB per peer and round on a second axis, targets dashed."""
    modes = list(section)
    xs = list(range(len(modes)))
    seconds = [section[m]["round_s"] for m in modes]
    ax.bar([x - 0.2 for x in xs], seconds, width=0.4, color="tab:blue", label="round s")
    plain = section.get("plain")
    if plain is not None:
        for x, m in zip(xs, modes, strict=True):
            if m in TARGETS:
                limit = TARGETS[m] * plain["round_s"]
                ax.hlines(limit, x - 0.45, x + 0.05, colors="grey", linestyles="--")
    for x, m in zip(xs, modes, strict=True):
        if "round_x_plain" in section[m]:
            ax.annotate(f"x{section[m]['round_x_plain']:.2f}", (x - 0.2, section[m]["round_s"]),
                        ha="center", va="bottom", fontsize=8)  # fmt: skip
    ax.set_ylabel("round s, median (blue; --: target)")
    mb = ax.twinx()
    mb.bar([x + 0.2 for x in xs], [section[m]["bytes_per_peer"] / 1e6 for m in modes],
           width=0.4, color="tab:orange", label="MB/peer/round")  # fmt: skip
    mb.set_ylabel("MB per peer and round (orange)")
    ax.set_xticks(xs, modes)
    ax.set_title("encryption and secure aggregation")
