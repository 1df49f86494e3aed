"""Shared parts of ``scripts/bench/learning``: collecting runs, the table, JSON and the plot."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.cv import summarize
from models.metrics import METRIC_NAMES

Summary = dict[str, dict[str, dict[str, float]]]


@dataclass
class RunLog:
    """Per-method metric dicts, one per seed, in the order the seeds ran."""

    runs: dict[str, list[dict[str, float]]] = field(default_factory=dict)

    def add(self, results: Mapping[str, Mapping[str, float]]) -> None:
        for method, metrics in results.items():
            self.runs.setdefault(method, []).append(dict(metrics))

    def summary(self) -> Summary:
        """``{method: {metric: {"mean", "std"}}}`` over seeds."""
        return {method: summarize(runs) for method, runs in self.runs.items()}


@dataclass(frozen=True)
class Target:
    """One target of the issue and whether this run met it."""

    text: str
    met: bool
    detail: str


def format_cell(stats: Mapping[str, float]) -> str:
    mean, std = stats["mean"], stats["std"]
    if math.isnan(mean):
        return "n/a"
    return f"{100 * mean:6.1f} ± {100 * std:4.1f}"


def render_table(summary: Summary, metrics: Sequence[str] = METRIC_NAMES) -> str:
    """Plain-text table, values in percent (mean ± std over seeds)."""
    width = max(len("method"), *(len(m) for m in summary))
    header = f"{'method':<{width}}  " + "  ".join(f"{m:>15}" for m in metrics)
    lines = [header, "-" * len(header)]
    for method, stats in summary.items():
        cells = "  ".join(f"{format_cell(stats[m]):>15}" for m in metrics if m in stats)
        lines.append(f"{method:<{width}}  {cells}")
    return "\n".join(lines)


def render_targets(targets: Sequence[Target]) -> str:
    return "\n".join(f"[{'met' if t.met else 'MISSED'}] {t.text} — {t.detail}" for t in targets)


def _clean(value: float) -> float | None:
    return None if math.isnan(value) else value


def write_json(path: Path, summary: Summary) -> None:
    """``{"<method>": {"<metric>": {"mean": x, "std": y}}}`` (NaN written as null)."""
    payload = {
        method: {
            metric: {"mean": _clean(s["mean"]), "std": _clean(s["std"])}
            for metric, s in stats.items()
        }
        for method, stats in summary.items()
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2) + "\n")


def write_meta(path: Path, meta: Mapping[str, Any], targets: Sequence[Target]) -> None:
    """Configuration, timing and target verdicts beside the results file."""
    payload = dict(meta)
    payload["targets"] = [{"text": t.text, "met": t.met, "detail": t.detail} for t in targets]
    path.write_text(json.dumps(payload, indent=2) + "\n")


def write_plot(
    path: Path, summary: Summary, metrics: Sequence[str], title: str, methods: Sequence[str]
) -> None:
    """Grouped bar chart (mean with std error bars) of ``metrics`` for ``methods``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [m for m in methods if m in summary]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(chosen) + 2), 4.5))
    bar = 0.8 / max(1, len(metrics))
    for offset, metric in enumerate(metrics):
        means = [100 * summary[m][metric]["mean"] for m in chosen]
        stds = [100 * summary[m][metric]["std"] for m in chosen]
        positions = [i + offset * bar for i in range(len(chosen))]
        ax.bar(positions, means, bar, yerr=stds, capsize=3, label=metric)
    ax.set_xticks([i + bar * (len(metrics) - 1) / 2 for i in range(len(chosen))])
    ax.set_xticklabels(chosen, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("percent (mean ± std over seeds)")
    finite = [
        100 * summary[m][k]["mean"]
        for m in chosen
        for k in metrics
        if not math.isnan(summary[m][k]["mean"])
    ]
    if finite:
        ax.set_ylim(max(0.0, min(finite) - 15), 100)
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
