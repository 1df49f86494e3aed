"""``scripts/bench/codecs`` runs end to end in its quick mode and writes the documented shapes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "codecs.py"


def test_quick_codecs_bench_writes_table_meta_and_plot(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--codecs", "none,int8,topk-0.1",
         "--workers", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    table = json.loads((tmp_path / "codecs.json").read_text())
    assert set(table) == {"heart"}
    assert list(table["heart"]) == ["none", "int8", "topk-0.1"]
    for row in table["heart"].values():
        assert set(row) == {
            "bytes_per_update", "bytes_per_round", "compression", "metric", "metric_delta"
        }  # fmt: skip
        assert row["bytes_per_update"] > 0 and 0 <= row["metric"] <= 1
        assert row["bytes_per_round"] == 4 * row["bytes_per_update"]  # every hospital, 2 rounds
    assert table["heart"]["none"]["compression"] == 1.0
    assert table["heart"]["none"]["metric_delta"] == 0.0
    meta = json.loads((tmp_path / "codecs.meta.json").read_text())
    assert meta["quick"] is True and meta["rounds"] == 2 and len(meta["runs"]) == 3
    assert all(run["left_out"] == 0 for run in meta["runs"])
    assert (tmp_path / "codecs.png").stat().st_size > 0

    # A row added later keeps the others; deflate is lossless, so the simulation it runs is
    # the int8 one bit for bit: the same agreed model, in fewer bytes.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--codecs", "int8-deflate", "--keep-others",
         "--workers", "1", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    again = json.loads((tmp_path / "codecs.json").read_text())["heart"]
    assert list(again) == ["none", "int8", "int8-deflate", "topk-0.1"]
    assert {k: again[k] for k in table["heart"]} == table["heart"]
    assert again["int8-deflate"]["metric"] == again["int8"]["metric"]
    assert again["int8-deflate"]["bytes_per_update"] < again["int8"]["bytes_per_update"]
