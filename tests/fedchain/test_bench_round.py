"""``scripts/bench/round`` runs a real federation in quick mode and writes the documented shapes.

No timing is asserted: only that every figure is there and physically sensible.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "round.py"
sys.path.insert(0, str(SCRIPT.parent))

from round import STEPS, params_label, parse_params, quantiles  # noqa: E402


def test_quick_round_bench_writes_table_meta_and_plot(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = json.loads((tmp_path / "round.json").read_text())
    assert list(table) == ["2x14@0"]
    row = table["2x14@0"]
    assert {"overhead_s", "round_s", "bytes_per_peer", "peak_rss_mb", "steps"} <= set(row)
    for figure in ("overhead_s", "round_s"):
        assert set(row[figure]) == {"median", "p90"}
        assert 0 < row[figure]["median"] <= row[figure]["p90"]
    assert row["overhead_s"]["median"] <= row["round_s"]["median"]
    # every step of a finalized round was timed, each a duration
    assert set(row["steps"]) == set(STEPS)
    assert all(v >= 0 for v in row["steps"].values())
    # both peers fetched the other's update and the aggregate through Kubo: bytes moved
    assert row["bytes_per_peer"] > 0 and row["bytes_in_per_peer"] > 0
    assert 50 < row["peak_rss_mb"] < 4000  # a Python peer with torch, well under 4 GB
    assert row["rounds"] == 2 and row["rounds_measured"] == 2
    meta = json.loads((tmp_path / "round.meta.json").read_text())
    assert meta["quick"] is True and meta["cells"] == ["2x14@0"]
    rules = meta["throughput"]["rules"]
    assert {"fedavg", "median", "krum"} <= set(rules)
    assert all(r["bit_identical"] and r["gb_per_s"] > 0 for r in rules.values())
    assert json.loads((tmp_path / "round.aggregation.json").read_text())["rules"] == rules
    assert (tmp_path / "round.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("text", "n", "label"), [("14", 14, "14"), ("1M", 10**6, "1M"), ("250k", 250_000, "250k")]
)
def test_sizes_read_and_print_alike(text: str, n: int, label: str) -> None:
    assert parse_params(text) == n and params_label(n) == label


def test_quantiles_median_and_p90() -> None:
    q = quantiles([float(x) for x in range(1, 11)])
    assert q == {"median": 5.5, "p90": 9.0}
