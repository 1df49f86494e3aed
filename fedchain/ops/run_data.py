"""A run's records, read into one shape whichever tool wrote them.

Three layouts are runs: a ``fedchain demo`` folder (``record.json`` and
``federation/hospitals/<name>/state/history.jsonl``), a ``fedchain simulate`` folder
(``record.json`` and ``peers/<name>/history.jsonl``) and one peer's ``state_dir``
(``history.jsonl`` alone).  What a layout lacks stays empty and the report says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fedchain.errors import ConfigError
from fedchain.private_files import read_json_file
from peer.baseline import read_local_only
from peer.records import HISTORY_FILE, History, RoundRecord

RECORD_FILE = "record.json"
HEADLINE_PREFERENCE = ("auroc", "macro_f1", "accuracy")
"""For a peer's records alone (no record.json names the task's metric)."""


@dataclass(frozen=True)
class RoundRow:
    """One finalized round as the run's summary recorded it."""

    round: int
    participants: int | None
    aggregate_cid: str | None
    headline: float | None
    seconds: float | None


@dataclass(frozen=True)
class InstitutionRow:
    name: str
    train_samples: int | None = None
    federated: float | None = None
    local_only: float | None = None
    local_only_pooled: float | None = None
    credit: int | None = None


@dataclass(frozen=True)
class RunData:
    kind: str
    """"demo", "simulate" or "peer"."""
    folder: Path
    task: str | None
    metric: str | None
    headline_label: str
    rounds: tuple[RoundRow, ...] = ()
    institutions: tuple[InstitutionRow, ...] = ()
    per_institution: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    """Per institution and round: the agreed model's metric on the institution's own test."""
    histories: Mapping[str, list[RoundRecord]] = field(default_factory=dict)
    epsilon: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    names: Mapping[str, str] = field(default_factory=dict)
    """Member address -> institution name, where the records tie an update to both."""

    def name_of(self, address: str) -> str:
        return self.names.get(address.lower(), address)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _history_dirs(folder: Path) -> tuple[str, dict[str, Path]]:
    """The run's kind and each institution's folder holding ``history.jsonl``."""
    hospitals = folder / "federation" / "hospitals"
    demo = sorted(hospitals.glob(f"*/**/{HISTORY_FILE}"))
    if demo:
        return "demo", {p.relative_to(hospitals).parts[0]: p.parent for p in demo}
    sim = sorted((folder / "peers").glob(f"*/{HISTORY_FILE}"))
    if sim:
        return "simulate", {p.parent.name: p.parent for p in sim}
    if (folder / HISTORY_FILE).is_file():
        name = folder.resolve().parent.name if folder.resolve().name == "state" else folder.name
        return "peer", {name: folder}
    return "", {}


def _read_record(folder: Path) -> dict[str, Any] | None:
    path = folder / RECORD_FILE
    record = read_json_file(path, "a readable run record")
    if record is None:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("rounds"), list):
        raise ConfigError(f"{path} has no 'rounds' list; is it a fedchain demo/simulate record?")
    return record


def _epsilon(folder: Path) -> dict[int, float]:
    """ε per round when the records carry it (differential privacy on)."""
    out: dict[int, float] = {}
    for entry in History(folder).entries():
        eps = _float(entry.get("epsilon", (entry.get("privacy") or {}).get("epsilon")))
        if isinstance(entry.get("round"), int) and eps is not None:
            out[int(entry["round"])] = eps
    return out


def _headline(metrics: Mapping[str, Any], metric: str | None) -> float | None:
    for key in ("pooled_primary", "mean_primary", f"pooled_{metric}"):
        if _float(metrics.get(key)) is not None:
            return _float(metrics.get(key))
    return None


def _round_rows(record: Mapping[str, Any], metric: str | None) -> tuple[RoundRow, ...]:
    rows = []
    for r in record["rounds"]:
        parts = r.get("participants")
        rows.append(
            RoundRow(
                round=int(r["round"]),
                participants=len(parts) if isinstance(parts, list) else None,
                aggregate_cid=r.get("aggregate_cid"),
                headline=_headline(r.get("metrics") or {}, metric),
                seconds=_float(r.get("seconds")),
            )
        )
    return tuple(rows)


def _record_curves(record: Mapping[str, Any]) -> dict[str, dict[int, float]]:
    curves: dict[str, dict[int, float]] = {}
    for r in record["rounds"]:
        metrics = r.get("metrics") or {}
        per = metrics.get("per_institution") or metrics.get("per_hospital_accuracy") or {}
        for name, value in per.items():
            if _float(value) is not None:
                curves.setdefault(name, {})[int(r["round"])] = float(value)
    return curves


def _history_curves(
    histories: Mapping[str, list[RoundRecord]], metric: str | None
) -> dict[str, dict[int, float]]:
    return {
        name: {
            rec.round: float(v)
            for rec in recs
            if rec.local_test and (v := rec.local_test.get(metric or "")) is not None
        }
        for name, recs in histories.items()
    }


def _names(record: Mapping[str, Any], histories: Mapping[str, list[RoundRecord]]) -> dict[str, str]:
    """Address -> name: an institution's own update CID (its history) is a participant's
    update CID (the record's round)."""
    by_cid = {
        p["update_cid"]: str(p["address"]).lower()
        for r in record["rounds"]
        for p in r.get("participants") or []
        if isinstance(p, dict) and "update_cid" in p and "address" in p
    }
    return {
        by_cid[rec.update_cid]: name
        for name, recs in histories.items()
        for rec in recs
        if rec.update_cid in by_cid
    }


INSTITUTION_KEYS: tuple[tuple[str, Mapping[str, str]], ...] = (
    (
        "institutions",
        {
            "train_samples": "train_samples",
            "federated": "federated_own_test",
            "local_only": "local_only_own_test",
            "local_only_pooled": "local_only_pooled_test",
            "credit": "credit",
        },
    ),
    # records written before "institutions" existed
    (
        "local_only",
        {"local_only": "own_test_accuracy", "local_only_pooled": "pooled_test_accuracy"},
    ),
)
"""Where a record keeps each institution's figures: section, then field -> key."""
COUNTS = ("train_samples", "credit")


def _figures(found: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, Any]:
    return {f: (_int if f in COUNTS else _float)(found.get(k)) for f, k in keys.items()}


def _institution_rows(record: Mapping[str, Any]) -> tuple[InstitutionRow, ...]:
    for section, keys in INSTITUTION_KEYS:
        per = record.get(section)
        if isinstance(per, dict):
            return tuple(InstitutionRow(name=name, **_figures(m, keys)) for name, m in per.items())
    return ()


def _baseline_rows(
    dirs: Mapping[str, Path], metric: str | None, curves: Mapping[str, Mapping[int, float]]
) -> tuple[InstitutionRow, ...]:
    """A peer's local-only baseline (``[baseline] local_only``) beside its last agreed model's
    figure, where it recorded one."""
    rows = []
    for name, folder in dirs.items():
        baseline = read_local_only(folder)
        if baseline is None:
            continue
        curve = curves.get(name) or {}
        rows.append(
            InstitutionRow(
                name=name,
                federated=curve[max(curve)] if curve else None,
                local_only=baseline["metrics"].get(metric or ""),
            )
        )
    return tuple(rows)


def _peer_metric(histories: Mapping[str, list[RoundRecord]]) -> str | None:
    keys = {k for recs in histories.values() for r in recs for k in (r.local_test or {})}
    return next((k for k in HEADLINE_PREFERENCE if k in keys), min(keys) if keys else None)


def load_run(folder: Path) -> RunData:
    """Read a run folder, or raise one ConfigError line naming what is missing."""
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder; pass a run folder (runs/<id>)")
    record = _read_record(folder)
    kind, dirs = _history_dirs(folder)
    if record is None and not dirs:
        raise ConfigError(
            f"{folder} is not a fedchain run: it has no {RECORD_FILE} (a demo or simulate run) "
            f"and no {HISTORY_FILE} (a peer's records), nor peers/ or federation/hospitals/ "
            "holding them"
        )
    histories = {name: History(d).records() for name, d in dirs.items()}
    epsilon = {name: eps for name, d in dirs.items() if (eps := _epsilon(d))}
    if record is None:
        metric = _peer_metric(histories)
        curves = _history_curves(histories, metric)
        return RunData(
            kind=kind,
            folder=folder,
            task=None,
            metric=metric,
            headline_label="own test split",
            institutions=_baseline_rows(dirs, metric, curves),
            per_institution=curves,
            histories=histories,
            epsilon=epsilon,
        )
    metric = record.get("primary_metric") or ("accuracy" if "local_only" in record else None)
    simulated = "simulation" in record
    curves = _record_curves(record) or _history_curves(histories, metric)
    return RunData(
        kind="simulate" if simulated else "demo",
        folder=folder,
        task=record.get("task"),
        metric=metric,
        headline_label="mean over own test splits" if simulated else "pooled test set",
        rounds=_round_rows(record, metric),
        institutions=_institution_rows(record),
        per_institution=curves,
        histories=histories,
        epsilon=epsilon,
        names=_names(record, histories),
    )
