"""``scripts/bench/privacy --cost-only`` runs plain, members-only and secure-aggregation
federations of real peer processes in its quick mode, and merges into an earlier privacy.json.

No timing is asserted: only the shape, that bytes moved, and that the three modes stored
different things in Kubo.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "bench" / "privacy.py"
sys.path.insert(0, str(SCRIPT.parent))

from privacy import merge  # noqa: E402

EARLIER_DP = {"3": {"auroc": {"mean": 0.8, "std": 0.01}, "mia_auc": 0.5, "max_epsilon_spent": 2.9}}


def test_quick_cost_runs_three_modes_and_keeps_the_dp_part(tmp_path: Path) -> None:
    (tmp_path / "privacy.json").write_text(json.dumps({"dp": EARLIER_DP, "cost": {}}))
    (tmp_path / "privacy.meta.json").write_text(json.dumps({"task": "heart", "runs": [1]}))
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--cost-only", "--quick", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = json.loads((tmp_path / "privacy.json").read_text())
    assert table["dp"] == EARLIER_DP  # the earlier run's part is kept as it was
    cost = table["cost"]
    assert list(cost) == ["plain", "encrypted", "secagg"]
    for row in cost.values():
        assert set(row) == {"round_s", "bytes_per_peer", "round_x_plain", "bytes_x_plain"}
        assert row["round_s"] > 0 and row["bytes_per_peer"] > 0
    assert cost["plain"]["round_x_plain"] == cost["plain"]["bytes_x_plain"] == 1.0
    meta = json.loads((tmp_path / "privacy.meta.json").read_text())
    assert meta["task"] == "heart" and meta["runs"] == [1]
    rows = meta["cost"]["rows"]
    assert meta["cost"]["peers"] == 2 and meta["cost"]["params"] == 20_000
    # What each mode put in Kubo, read back from the last round's submissions.
    assert rows["plain"]["update_format"] == ["safetensors"]
    assert rows["encrypted"]["update_format"] == ["sealed"]
    assert rows["secagg"]["update_format"] == ["masked"]
    # Masked residues are uint64: the updates alone are twice plain's float32.
    assert cost["secagg"]["bytes_per_peer"] > cost["plain"]["bytes_per_peer"]
    assert (tmp_path / "privacy.png").stat().st_size > 10_000
    assert "round x plain" in done.stdout
    assert not list(tmp_path.glob(".privacy*"))  # no temporary file left behind


def test_a_dp_run_keeps_the_cost_part_and_its_meta() -> None:
    old_table = {"dp": {"1": {}}, "cost": {"plain": {"round_s": 1.0, "bytes_per_peer": 5}}}
    old_meta = {"task": "hapt", "cost_note": "old", "cost": {"peers": 4}}
    table, meta = merge(old_table, old_meta, ({"3": {}}, {"task": "heart"}), None)
    assert table == {"dp": {"3": {}}, "cost": old_table["cost"]}
    assert meta["task"] == "heart" and meta["cost"] == {"peers": 4} and "cost_note" not in meta


def test_a_first_cost_run_starts_an_empty_dp_part() -> None:
    table, meta = merge({}, {}, None, ({"plain": {}}, {"peers": 2}))
    assert table == {"dp": {}, "cost": {"plain": {}}} and meta["cost"] == {"peers": 2}


def test_bad_cost_options_are_refused_before_anything_runs(tmp_path: Path) -> None:
    for option, value, says in [
        ("--cost-params", "13", "even number"),
        ("--cost-modes", "plain,fast", "plain, encrypted, secagg"),
    ]:
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--cost-only", option, value, "--out", str(tmp_path)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 2 and says in done.stderr, done.stderr
        assert "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())
