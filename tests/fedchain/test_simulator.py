"""``fedchain simulate``: real peer nodes on in-memory backends, reproducible per seed."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from fedchain.simulator.run import simulate
from peer.records import History


def _quiet() -> Console:
    return Console(quiet=True)


def test_same_seed_same_aggregates_other_seed_other_ones(tmp_path: Path) -> None:
    first = simulate("heart", 4, 2, seed=0, out=tmp_path / "a", console=_quiet())
    again = simulate("heart", 4, 2, seed=0, out=tmp_path / "b", local_only=False, console=_quiet())
    other = simulate("heart", 4, 2, seed=1, out=tmp_path / "c", local_only=False, console=_quiet())
    assert len(first.aggregate_cids) == 2
    assert first.aggregate_cids == again.aggregate_cids
    assert set(first.aggregate_cids).isdisjoint(other.aggregate_cids)

    record = json.loads((tmp_path / "a" / "record.json").read_text())
    assert [r["aggregate_cid"] for r in record["rounds"]] == first.aggregate_cids
    assert record["primary_metric"] == "auroc"
    institutions = record["institutions"]
    assert set(institutions) == {"cleveland", "hungary", "switzerland", "va"}
    assert all(
        v["federated_own_test"] is not None and v["local_only_own_test"] is not None
        for v in institutions.values()
    )
    for name in institutions:
        entries = list(History(tmp_path / "a" / "peers" / name).entries())
        assert [e["round"] for e in entries] == [1, 2]
        assert all(e["status"] == "finalized" and "auroc" in e["local_test"] for e in entries)
