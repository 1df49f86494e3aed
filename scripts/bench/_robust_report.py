"""Tables, targets, JSON and heat maps of ``scripts/bench/robust``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

Table = dict[str, Any]
"""``{task: {rule: {attack: {share: {"metric": {"mean", "std"}, "byzantine_credit_share"}}}}}``"""

BYZANTINE_SHARE = {"heart": "0.25", "hapt": "0.3"}
NOT_ROBUST = {"fedavg", "fedprox", "fedadam", "fedyogi"}


def _cell(table: Table, task: str, rule: str, attack: str, share: str) -> dict[str, Any] | None:
    cell: dict[str, Any] | None = table.get(task, {}).get(rule, {}).get(attack, {}).get(share)
    return cell


def _mean(cell: Mapping[str, Any] | None) -> float:
    return float("nan") if cell is None else float(cell["metric"]["mean"])


def drop(table: Table, task: str, rule: str, attack: str) -> float:
    """Loss of ``rule`` under ``attack`` against its own clean run (positive: worse)."""
    share = BYZANTINE_SHARE[task]
    return _mean(_cell(table, task, rule, attack, "0")) - _mean(
        _cell(table, task, rule, attack, share)
    )


def render(table: Table) -> str:
    lines = []
    for task, rules in table.items():
        attacks = sorted({a for cells in rules.values() for a in cells})
        share = BYZANTINE_SHARE[task]
        lines.append(
            f"\n{task}: metric in percent on the pooled test set (mean over seeds), clean / "
            f"with {share} Byzantine, [Byzantine credit share %]"
        )
        head = f"{'rule':<18}{'clean':>8}" + "".join(f"{a:>22}" for a in attacks)
        lines.append(head)
        for rule in rules:
            clean = _mean(_cell(table, task, rule, attacks[0], "0")) if attacks else math.nan
            row = f"{rule:<18}{100 * clean:>8.1f}"
            for a in attacks:
                c = _cell(table, task, rule, a, share)
                if c is None:
                    row += f"{'-':>22}"
                else:
                    row += f"{100 * _mean(c):>13.1f} [{100 * c['byzantine_credit_share']:4.1f}]"
            lines.append(row)
    return "\n".join(lines)


def targets(
    table: Table, runs: Sequence[Mapping[str, Any]], default_rule: str, pooled: Mapping[str, float]
) -> list[tuple[str, bool, str]]:
    """The issue's targets as (text, met, detail)."""
    out: list[tuple[str, bool, str]] = []
    for task, rules in table.items():
        attacks = sorted({a for cells in rules.values() for a in cells})
        robust = [r for r in rules if r not in NOT_ROBUST]
        for attack in attacks:
            drops = {r: drop(table, task, r, attack) for r in robust}
            best = min(drops, key=lambda r: drops[r]) if drops else None
            fedavg = drop(table, task, "fedavg", attack) if "fedavg" in rules else math.nan
            if best is None:
                continue
            out.append(
                (
                    f"{task}/{attack}: best robust rule within 2 points of its clean run",
                    drops[best] <= 0.02,
                    f"{best} loses {100 * drops[best]:.1f}; FedAvg loses {100 * fedavg:.1f} "
                    f"({'>' if fedavg > 0.10 else 'not >'} 10)",
                )
            )
        if default_rule in rules and "fedavg" in rules and attacks:
            cost = _mean(_cell(table, task, "fedavg", attacks[0], "0")) - _mean(
                _cell(table, task, default_rule, attacks[0], "0")
            )
            out.append(
                (
                    f"{task}: default rule ({default_rule}) costs <= 1 point without attack",
                    cost <= 0.01,
                    f"FedAvg minus {default_rule}: {100 * cost:.1f} points",
                )
            )
        if default_rule in rules:
            shares = {
                a: rules[default_rule][a][BYZANTINE_SHARE[task]]["byzantine_credit_share"]
                for a in attacks
                if BYZANTINE_SHARE[task] in rules[default_rule].get(a, {})
            }
            worst = max(shares, key=lambda a: shares[a]) if shares else None
            if worst is not None:
                out.append(
                    (
                        f"{task}: Byzantine credit share <= 2% for every attack ({default_rule})",
                        shares[worst] <= 0.02,
                        f"largest {100 * shares[worst]:.2f}% ({worst}); "
                        + ", ".join(f"{a} {100 * v:.2f}%" for a, v in shares.items()),
                    )
                )
            clean_runs = [
                r
                for r in runs
                if r["job"]["task"] == task
                and r["job"]["rule"] == default_rule
                and r["job"]["byzantine"] == 0
            ]
            gaps = [honest_gap(r) for r in clean_runs]
            relative = [honest_gap(r, relative=True) for r in clean_runs]
            finite = [g for g in gaps if not math.isnan(g)]
            if gaps:
                out.append(
                    (
                        f"{task}: honest credit shares within 10 points of data shares (clean, "
                        f"{default_rule})",
                        bool(finite) and max(finite) <= 0.10 and len(finite) == len(gaps),
                        f"largest gap {100 * max(finite, default=math.nan):.1f} points "
                        f"(relative {100 * max(relative, default=math.nan):.0f}%) over "
                        f"{len(gaps)} runs ({len(gaps) - len(finite)} paid no credit)",
                    )
                )
    if "heart" in table and "heart" in pooled:
        clean = {r["job"]["rule"]: [] for r in runs if r["job"]["task"] == "heart"}  # type: dict[str, list[float]]
        for r in runs:
            if r["job"]["task"] == "heart" and r["job"]["byzantine"] == 0:
                clean[r["job"]["rule"]].append(r["metric"])
        best_rule = max(clean, key=lambda k: float(np.mean(clean[k])))
        best = float(np.mean(clean[best_rule]))
        out.append(
            (
                f"heart: best rule's clean accuracy over {len(clean[best_rule])} seeds beats "
                "pooled training",
                best > pooled["heart"],
                f"{best_rule} {100 * best:.1f} vs pooled {100 * pooled['heart']:.1f}",
            )
        )
    return out


def honest_gap(run: Mapping[str, Any], *, relative: bool = False) -> float:
    """Largest gap between an honest member's credit share and its data share (in share
    points, or relative to the data share)."""
    credit, samples = run["credit"], run["samples"]
    honest = [n for n in samples if n not in run["byzantine"]]
    total_c = sum(credit[n] for n in honest)
    total_s = sum(samples[n] for n in honest)
    if total_c == 0:
        return math.nan
    return max(
        abs(credit[n] / total_c - samples[n] / total_s) / (samples[n] / total_s if relative else 1)
        for n in honest
    )


def write_outputs(
    out: Path,
    table: Table,
    runs: Sequence[Mapping[str, Any]],
    met: Sequence[tuple[str, bool, str]],
    meta: Mapping[str, Any],
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "robust.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "robust.meta.json").write_text(
        json.dumps(
            {
                **meta,
                "targets": [{"text": t, "met": ok, "detail": d} for t, ok, d in met],
                "runs": list(runs),
            },
            indent=2,
        )
        + "\n"
    )
    heat_map(out / "robust.png", table)


def heat_map(path: Path, table: Table) -> None:
    """One panel per task: rules x attacks, colour = points lost against the clean run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(table)
    fig, axes = plt.subplots(1, len(tasks), figsize=(7 * len(tasks), 5), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        rules = list(table[task])
        attacks = sorted({a for cells in table[task].values() for a in cells})
        grid = np.array([[100 * drop(table, task, r, a) for a in attacks] for r in rules])
        image = ax.imshow(grid, cmap="Reds", vmin=0, vmax=max(10.0, float(np.nanmax(grid))))
        ax.set_xticks(range(len(attacks)), attacks, rotation=30, ha="right", fontsize=8)
        ax.set_yticks(range(len(rules)), rules, fontsize=8)
        for i in range(len(rules)):
            for j in range(len(attacks)):
                ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=7)
        ax.set_title(f"{task}: points lost with {BYZANTINE_SHARE[task]} Byzantine")
        fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
