"""``scripts/bench/privacy`` runs end to end in its quick mode and writes the documented shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "privacy.py"


def test_quick_privacy_bench_writes_table_and_plot(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--dp-only", "--workers", "1",
         "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((tmp_path / "privacy.json").read_text())
    assert set(table) == {"dp", "cost"}
    assert list(table["dp"]) == ["3", "inf"]
    for row in table["dp"].values():
        assert set(row["auroc"]) == {"mean", "std"}  # heart's primary metric
        assert 0.5 < row["auroc"]["mean"] <= 1.0
        assert 0.0 <= row["mia_auc"] <= 1.0
    # Every institution stayed within its budget, and spent some of it; plain training spends none.
    assert 0.0 < table["dp"]["3"]["max_epsilon_spent"] <= 3.0 * 1.001
    assert table["dp"]["inf"]["max_epsilon_spent"] is None
    meta = json.loads((tmp_path / "privacy.meta.json").read_text())
    assert {r["job"]["epsilon"] for r in meta["runs"]} == {3.0, float("inf")}
    assert (tmp_path / "privacy.png").stat().st_size > 10_000
    assert "MIA AUC" in done.stdout
