"""``fedchain report``: one self-contained HTML file describing a finished run.

Meant to be mailed or shown to a clinical board: no external assets (plots are base64 PNGs,
the style is inline), every number read from the run's own records, and a section whose data
the run does not have says so instead of disappearing.
"""

from __future__ import annotations

import base64
import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from statistics import mean

from fedchain.ops.report_plots import bars, metric_plot, stacked_bars
from fedchain.ops.run_data import RunData, load_run
from fedchain.private_files import write_private_text

REPORT_FILE = "report.html"
STEP_TOTAL = "round"
NOT_STEPS = (STEP_TOTAL, "overhead")
"""``overhead`` is the round minus training: already covered by the steps and "waiting"."""
WAITING = "waiting/other"
STEP_ORDER = (
    "fetch_model", "train", "encode", "add", "submit", "wait_close", "fetch_updates",
    "aggregate", "add_aggregate", "attest", "wait_final",
)  # fmt: skip
"""A round's steps in the order a peer takes them; other recorded steps follow by name."""

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
.absent{color:#777;font-style:italic}code{font-size:.85rem}img{max-width:100%}
"""


@dataclass(frozen=True)
class Section:
    title: str
    body: str
    """HTML; when the run lacks the data, a sentence saying what is absent."""


def _fmt(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _absent(text: str) -> str:
    return f'<p class="absent">{html.escape(text)}</p>'


def _baselines(run: RunData) -> dict[str, float]:
    out: dict[str, float] = {}
    own = [i.local_only for i in run.institutions if i.local_only is not None]
    pooled = [i.local_only_pooled for i in run.institutions if i.local_only_pooled is not None]
    if own and run.kind == "simulate":
        out["local-only, mean over own test splits"] = mean(own)
    if len(own) == 1 and run.kind == "peer":
        out["this institution alone (local-only)"] = own[0]
    if pooled:
        out["best local-only model on the pooled test set"] = max(pooled)
    return out


def quality_section(run: RunData) -> Section:
    title = f"Model quality per round ({run.metric or 'metric'}, {run.headline_label})"
    pooled_note = _absent(
        "No pooled (centrally trained) baseline is in this run's records; "
        "scripts/bench/learning measures one on the same data."
    )
    headline = {r.round: r.headline for r in run.rounds if r.headline is not None}
    if headline:
        plot = metric_plot(
            {"federated (agreed model)": headline}, _baselines(run), run.metric or ""
        )
        rows = [
            (r.round, _fmt(r.participants), _fmt(r.headline), _fmt(r.seconds, 2), r.aggregate_cid)
            for r in run.rounds
        ]
        header = ("round", "participants", run.metric or "metric", "seconds", "aggregate CID")
        body = _img(plot, title) + _table(header, rows) + pooled_note
        return Section(title, body)
    if run.per_institution and any(run.per_institution.values()):
        plot = metric_plot(run.per_institution, _baselines(run), run.metric or "")
        curve_rows = [
            (name, str(rnd), _fmt(v))
            for name, pts in run.per_institution.items()
            for rnd, v in sorted(pts.items())
        ]
        body = _img(plot, title) + _table(("institution", "round", run.metric or ""), curve_rows)
        return Section(title, body + pooled_note)
    return Section(title, _absent("No per-round metrics in this run's records."))


def institutions_section(run: RunData) -> Section:
    title = "Per institution (own test split)"
    parts: list[str] = []
    if run.per_institution and any(run.per_institution.values()):
        alone = {i.name: i.local_only for i in run.institutions if i.local_only is not None}
        plot = metric_plot(run.per_institution, {}, run.metric or "", own_baselines=alone)
        parts.append(_img(plot, title + ": federated per round, dotted: local-only"))
    if run.institutions:
        rows = [
            (
                i.name,
                _fmt(i.train_samples),
                _fmt(i.federated),
                _fmt(i.local_only),
                _fmt(i.local_only_pooled),
                _fmt(i.credit),
            )
            for i in run.institutions
        ]
        header = (
            "institution",
            "train samples",
            "federated",
            "local-only",
            "local-only on pooled test",
            "credit",
        )
        parts.append(_table(header, rows))
    else:
        parts.append(_absent("No local-only baselines in this run's records."))
    return Section(title, "".join(parts))


def _step_key(step: str) -> tuple[int, str]:
    return (STEP_ORDER.index(step) if step in STEP_ORDER else len(STEP_ORDER), step)


def step_seconds(run: RunData) -> dict[int, dict[str, float]]:
    """Per round, each step's seconds averaged over the institutions that recorded it."""
    collected: dict[int, dict[str, list[float]]] = {}
    for records in run.histories.values():
        for rec in records:
            if STEP_TOTAL not in rec.seconds:
                continue
            steps = {k: float(v) for k, v in rec.seconds.items() if k not in NOT_STEPS}
            steps[WAITING] = max(0.0, float(rec.seconds[STEP_TOTAL]) - sum(steps.values()))
            for step, secs in steps.items():
                collected.setdefault(rec.round, {}).setdefault(step, []).append(secs)
    return {r: {s: mean(v) for s, v in steps.items()} for r, steps in sorted(collected.items())}


def timing_section(run: RunData) -> Section:
    title = "Round time"
    steps = step_seconds(run)
    if steps:
        found = {s for v in steps.values() for s in v} - {WAITING}
        names = [*sorted(found, key=_step_key), WAITING]
        plot = stacked_bars(steps, "seconds (mean over institutions)", names)
        rows = [
            (r, *(_fmt(v.get(s), 3) for s in names), _fmt(sum(v.values()), 3))
            for r, v in steps.items()
        ]
        body = _img(plot, title) + _table(("round", *names, "total"), rows)
        if run.kind == "simulate":
            body += _absent(
                "The simulator runs on a virtual clock: these are the steps' wall-clock seconds "
                "on the machine that ran it; waiting for deadlines took no real time."
            )
        return Section(title, body)
    durations = {r.round: {"round": r.seconds} for r in run.rounds if r.seconds is not None}
    if durations:
        plot = stacked_bars(durations, "seconds", ["round"])
        note = _absent("The records have no per-step times; round durations only.")
        return Section(title, _img(plot, title) + note)
    return Section(title, _absent("No round times in this run's records."))


def not_credited(run: RunData) -> list[tuple[int, str, str, str]]:
    """(round, member, "left out" / "no credit", why), from every institution's records."""
    seen: dict[tuple[int, str, str], str] = {}
    for records in run.histories.values():
        for rec in records:
            for member, why in rec.left_out.items():
                seen[(rec.round, run.name_of(member), "left out")] = why
            for member, why in rec.no_credit.items():
                seen[(rec.round, run.name_of(member), "no credit")] = why
    return [(r, m, kind, why) for (r, m, kind), why in sorted(seen.items())]


def contributions_section(run: RunData) -> Section:
    title = "Contributions and credit"
    credit = {i.name: i.credit for i in run.institutions if i.credit is not None}
    rounds = sorted({rec.round for recs in run.histories.values() for rec in recs})
    scored = {n: {rec.round: rec.score for rec in recs} for n, recs in run.histories.items()}
    if not credit and not any(s is not None for v in scored.values() for s in v.values()):
        return Section(title, _absent("No contribution scores or credit in this run's records."))
    parts: list[str] = []
    if credit:
        values = {n: float(credit[n]) for n in sorted(credit)}
        parts.append(_img(bars(values, "credit on chain"), title))
    if scored:
        header = ("institution", *(f"round {r}" for r in rounds), "credit on chain")
        rows = [
            (n, *(_fmt(scored[n].get(r)) for r in rounds), _fmt(credit.get(n)))
            for n in sorted(scored)
        ]
        parts.append(_table(header, rows))
        parts.append(
            _absent(
                "A round's score is known to an institution only when it aggregated that "
                "round itself (– otherwise); the credit column is what the chain holds."
            )
        )
    missing = not_credited(run)
    if missing:
        parts.append(_table(("round", "member", "outcome", "why"), missing))
    else:
        parts.append("<p>Every update was used and credited.</p>")
    return Section(title, "".join(parts))


def privacy_section(run: RunData) -> Section:
    title = "Differential privacy (ε)"
    if not run.epsilon:
        return Section(title, _absent("No ε in this run's records (differential privacy off)."))
    plot = metric_plot(run.epsilon, {}, "ε spent")
    rows = [(n, r, _fmt(e, 3)) for n, pts in run.epsilon.items() for r, e in sorted(pts.items())]
    return Section(title, _img(plot, title) + _table(("institution", "round", "ε"), rows))


def render(run: RunData, sections: Sequence[Section]) -> str:
    what = {"demo": "fedchain demo", "simulate": "fedchain simulate", "peer": "peer records"}
    facts: Mapping[str, object] = {
        "run": run.folder.resolve(),
        "kind": what.get(run.kind, run.kind),
        "task": run.task or "–",
        "metric": run.metric or "–",
        "institutions": len(run.histories) or len(run.institutions),
        "report written": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    head = _table(("", ""), facts.items())
    body = "".join(f"<h2>{html.escape(s.title)}</h2>{s.body}" for s in sections)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>fedchain report: {html.escape(run.folder.name)}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>fedchain run report: {html.escape(run.folder.name)}</h1>{head}{body}"
        "</body></html>\n"
    )


def write_report(folder: Path, out: Path | None = None) -> Path:
    """Write the report of the run in ``folder`` (default ``<folder>/report.html``)."""
    run = load_run(folder)
    sections = [
        quality_section(run),
        institutions_section(run),
        timing_section(run),
        contributions_section(run),
        privacy_section(run),
    ]
    path = out if out is not None else folder / REPORT_FILE
    write_private_text(path, render(run, sections))
    return path
