"""``scripts/bench/secagg`` runs in its quick mode and writes the documented shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "secagg.py"


def test_quick_secagg_bench_writes_table_and_meta(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((tmp_path / "secagg.json").read_text())
    assert list(table) == ["3"]
    row = table["3"]
    assert row["masked_bytes"] == 8 + 8 * 10_001 and row["plain_bytes"] == 40_000
    assert all(row[k] >= 0 for k in ("encode_mask_s", "unmask_s", "unmask_one_missing_s"))
    meta = json.loads((tmp_path / "secagg.meta.json").read_text())
    assert meta["quick"] is True and meta["parameters"] == 10_000
