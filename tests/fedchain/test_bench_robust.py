"""``scripts/bench/robust`` runs end to end in its quick mode and writes the documented shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "robust.py"


def test_quick_robust_bench_writes_table_targets_and_plot(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable, str(SCRIPT), "--quick", "--tasks", "heart",
            "--rules", "fedavg,multi-krum", "--attacks", "scaling,free-ride",
            "--seeds", "1", "--workers", "1", "--out", str(tmp_path),
        ],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((tmp_path / "robust.json").read_text())
    assert set(table) == {"heart"}
    assert set(table["heart"]) == {"fedavg", "multi-krum"}
    for attacks in table["heart"].values():
        assert set(attacks) == {"scaling", "free-ride"}
        for shares in attacks.values():
            assert set(shares) == {"0", "0.25"}
            for cell in shares.values():
                assert set(cell) == {"metric", "byzantine_credit_share"}
                assert set(cell["metric"]) == {"mean", "std"}
    # The scaled update wrecks FedAvg (the attack is real) and is never paid, under any rule.
    fedavg = table["heart"]["fedavg"]["scaling"]
    assert fedavg["0.25"]["metric"]["mean"] < fedavg["0"]["metric"]["mean"] - 0.10
    assert all(
        table["heart"][rule]["scaling"]["0.25"]["byzantine_credit_share"] == 0.0
        for rule in ("fedavg", "multi-krum")
    )
    meta = json.loads((tmp_path / "robust.meta.json").read_text())
    assert meta["quick"] is True and meta["targets"] and len(meta["runs"]) == 6
    assert (tmp_path / "robust.png").stat().st_size > 0
    again = subprocess.run(
        [sys.executable, str(SCRIPT), "--report-only", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((tmp_path / "robust.json").read_text()) == table
