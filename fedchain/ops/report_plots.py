"""The report's plots, each a PNG as bytes (matplotlib's object API: no global pyplot state)."""

from __future__ import annotations

import io
from collections.abc import Mapping

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return buf.getvalue()


def metric_plot(
    curves: Mapping[str, Mapping[int, float]],
    baselines: Mapping[str, float],
    ylabel: str,
    *,
    own_baselines: Mapping[str, float] | None = None,
) -> bytes:
    """One line per curve over rounds, one dashed horizontal line per baseline; a curve's own
    baseline (``own_baselines``, by curve label) is dotted in the curve's colour."""
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    for i, (label, points) in enumerate(curves.items()):
        rounds = sorted(points)
        color = f"C{i % 10}"
        ax.plot(rounds, [points[r] for r in rounds], marker="o", label=label, color=color)
        own = (own_baselines or {}).get(label)
        if own is not None:
            ax.axhline(own, linestyle=":", linewidth=1.2, color=color, label=f"{label} alone")
    for i, (label, value) in enumerate(baselines.items()):
        color = f"C{(i + len(curves)) % 10}"
        ax.axhline(value, linestyle="--", linewidth=1, color=color, label=label)
    ax.set_xlabel("round")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small", loc="best")
    ax.grid(alpha=0.3)
    return _png(fig)


def stacked_bars(
    by_round: Mapping[int, Mapping[str, float]], ylabel: str, parts: list[str]
) -> bytes:
    """One bar per round, stacked by ``parts`` (missing parts count 0)."""
    fig = Figure(figsize=(7.5, 3.6), layout="constrained")
    ax = fig.subplots()
    rounds = sorted(by_round)
    bottom = [0.0] * len(rounds)
    for part in parts:
        heights = [float(by_round[r].get(part, 0.0)) for r in rounds]
        ax.bar(rounds, heights, bottom=bottom, label=part)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    ax.set_xlabel("round")
    ax.set_ylabel(ylabel)
    ax.set_xticks(rounds)
    ax.legend(fontsize="small", loc="best")
    return _png(fig)


def bars(values: Mapping[str, float], ylabel: str) -> bytes:
    """One bar per name."""
    fig = Figure(figsize=(7.5, 3.0), layout="constrained")
    ax = fig.subplots()
    names = list(values)
    ax.bar(names, [values[n] for n in names], color=[f"C{i % 10}" for i in range(len(names))])
    ax.set_ylabel(ylabel)
    return _png(fig)
