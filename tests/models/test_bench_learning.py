"""``scripts/bench/learning`` runs end to end, writes the documented JSON shape, and takes its
federated column from ``fedchain simulate`` (real peer nodes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from models.datasets.heart import HOSPITALS
from models.metrics import METRIC_NAMES

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "learning"


def _run(tmp_path: Path, *args: str, seeds: int = 2) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(SCRIPT), *args, "--quick", "--threads", "1"]
    return subprocess.run(
        [*command, "--seeds", str(seeds), "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _check_shape(path: Path, required: list[str]) -> dict[str, dict[str, dict[str, float]]]:
    payload: dict[str, dict[str, dict[str, float]]] = json.loads(path.read_text())
    for method in required:
        assert method in payload, method
    for method, metrics in payload.items():
        assert set(metrics) == set(METRIC_NAMES), method
        for stats in metrics.values():
            assert set(stats) == {"mean", "std"}
            assert stats["mean"] is None or isinstance(stats["mean"], float)
    return payload


def _check_simulated(meta: dict[str, Any], seeds: int, methods: set[str]) -> None:
    """Every federated method of every seed is a simulation whose record is on disk."""
    assert meta["federated_source"] == "fedchain simulate"
    runs = meta["federated_runs"]
    assert {(r["seed"], r["method"]) for r in runs} == {
        (s, m) for s in range(seeds) for m in methods
    }
    for run in runs:
        record = json.loads(Path(run["record"]).read_text())
        assert len(record["rounds"]) == run["rounds"] == meta["federated"]["rounds"]
        assert record["rounds"][-1]["aggregate_cid"] == run["final_aggregate_cid"]
        assert record["task_spec"]["training"]["seed"] == run["seed"]


def test_heart_quick(tmp_path):
    done = _run(tmp_path, "--dataset", "heart", "--cv-folds", "2", seeds=1)
    assert done.returncode == 0, done.stderr
    required = [
        "pooled",
        "federated",
        "pooled_cv2",
        *(f"local:{h}" for h in HOSPITALS),
        *(f"federated@{h}" for h in HOSPITALS),
    ]
    payload = _check_shape(tmp_path / "learning-heart.json", required)
    assert 0.0 < payload["pooled"]["accuracy"]["mean"] <= 1.0
    assert 0.0 < payload["federated"]["auroc"]["mean"] <= 1.0
    meta = json.loads((tmp_path / "learning-heart.meta.json").read_text())
    assert meta["seeds"] == [0] and len(meta["targets"]) == 2
    assert meta["federated"]["rounds"] == 2
    _check_simulated(meta, 1, {"federated"})
    record = json.loads(Path(meta["federated_runs"][0]["record"]).read_text())
    assert set(record["institutions"]) == set(HOSPITALS)
    assert (tmp_path / "learning-heart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Targets:" in done.stdout and "federated" in done.stdout


def test_breast_quick(tmp_path):
    done = _run(tmp_path, "--dataset", "breast", "--cv-folds", "0")
    assert done.returncode == 0, done.stderr
    _check_shape(tmp_path / "learning-breast.json", ["pooled", "federated", "local:site-1"])
    meta = json.loads((tmp_path / "learning-breast.meta.json").read_text())
    _check_simulated(meta, 2, {"federated"})


def test_hapt_quick(tmp_path):
    done = _run(tmp_path, "--dataset", "hapt", seeds=1)
    assert done.returncode == 0, done.stderr
    payload = _check_shape(
        tmp_path / "learning-hapt.json",
        ["pooled", "federated", "pooled:acc_only", "pooled:gyro_only", "federated:missing_gyro"],
    )
    assert any(m.startswith("gain:") for m in payload)
    meta = json.loads((tmp_path / "learning-hapt.meta.json").read_text())
    _check_simulated(meta, 1, {"federated", "federated:missing_gyro"})
    missing = next(r for r in meta["federated_runs"] if r["method"] == "federated:missing_gyro")
    held = {
        name: v["modalities"]
        for name, v in json.loads(Path(missing["record"]).read_text())["institutions"].items()
    }
    assert meta["lacking_gyro"] and all(held[name] == ["acc"] for name in meta["lacking_gyro"])
    assert all(v == ["acc", "gyro"] for n, v in held.items() if n not in meta["lacking_gyro"])


def test_bad_arguments_are_refused(tmp_path):
    done = _run(tmp_path, "--dataset", "mnist")
    assert done.returncode != 0 and "invalid choice" in done.stderr
