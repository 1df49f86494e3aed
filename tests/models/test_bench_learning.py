"""``scripts/bench/learning`` runs end to end and writes the documented JSON shape."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_heart_quick(tmp_path):
    done = _run(tmp_path, "--dataset", "heart", "--cv-folds", "2", seeds=1)
    assert done.returncode == 0, done.stderr
    required = ["pooled", "federated", "pooled_cv2", *(f"local:{h}" for h in HOSPITALS)]
    payload = _check_shape(tmp_path / "learning-heart.json", required)
    assert 0.0 < payload["pooled"]["accuracy"]["mean"] <= 1.0
    meta = json.loads((tmp_path / "learning-heart.meta.json").read_text())
    assert meta["seeds"] == [0] and len(meta["targets"]) == 2
    assert (tmp_path / "learning-heart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Targets:" in done.stdout and "federated" in done.stdout


def test_breast_quick(tmp_path):
    done = _run(tmp_path, "--dataset", "breast", "--cv-folds", "0")
    assert done.returncode == 0, done.stderr
    _check_shape(tmp_path / "learning-breast.json", ["pooled", "federated", "local:site-1"])


def test_hapt_quick(tmp_path):
    done = _run(tmp_path, "--dataset", "hapt", seeds=1)
    assert done.returncode == 0, done.stderr
    payload = _check_shape(
        tmp_path / "learning-hapt.json",
        ["pooled", "federated", "pooled:acc_only", "pooled:gyro_only", "federated:missing_gyro"],
    )
    assert any(m.startswith("gain:") for m in payload)


def test_bad_arguments_are_refused(tmp_path):
    done = _run(tmp_path, "--dataset", "mnist")
    assert done.returncode != 0 and "invalid choice" in done.stderr
