"""The peer's state folder and history: clear errors, private files, strict JSON."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from fedchain.errors import StateError
from peer.records import History, prepare_state_dir
from tests.factories import read_only


def test_missing_state_dir_is_made_private(tmp_path: Path) -> None:
    state = prepare_state_dir(tmp_path / "a" / "state")
    assert state.is_dir()
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_state_dir_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "state"
    f.write_text("x")
    with pytest.raises(StateError, match="is a file, not a folder"):
        prepare_state_dir(f)


def test_state_dir_under_a_file_cannot_be_made(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("x")
    with pytest.raises(StateError, match="state_dir is not writable"):
        prepare_state_dir(tmp_path / "f" / "state")


def test_read_only_state_dir(tmp_path: Path) -> None:
    with read_only(tmp_path / "ro") as ro, pytest.raises(StateError, match="not writable"):
        prepare_state_dir(ro)


def test_history_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "history.jsonl").mkdir()
    with pytest.raises(StateError, match="is not a file"):
        prepare_state_dir(tmp_path)
    with pytest.raises(StateError, match="cannot write the peer's history"):
        History(tmp_path).append({"round": 1})


def test_history_is_private_strict_json_and_survives_a_torn_line(tmp_path: Path) -> None:
    h = History(tmp_path)
    h.append({"round": 1, "local_test": {"auroc": float("nan"), "accuracy": 0.5}})
    with h.path.open("a") as fh:
        fh.write('{"round": 2, "trunc')  # a crash mid-write
    h.append({"round": 3})
    assert stat.S_IMODE(h.path.stat().st_mode) == 0o600
    first = json.loads(h.path.read_text().splitlines()[0])
    assert first["local_test"] == {"auroc": None, "accuracy": 0.5}
    assert h.rounds() == {1, 3}


def test_round_record_round_trips_through_history(tmp_path: Path) -> None:
    from peer.records import GossipTotals, HistoryWriter, RoundRecord

    history = History(tmp_path)
    full = RoundRecord(
        round=2,
        status="finalized",
        update_cid="bafy-u",
        aggregate_cid="bafy-a",
        accepted=("0xA", "0xB"),
        left_out={"0xC": "copy"},
        scores_root="0x00",
        score=5,
        seconds={"round": 1.5},
        agreed=True,
        dissent=("0xD",),
        gossip=GossipTotals(accepted=3, rejected={"bad": 1}, inbox_dropped=0, outbound_dropped=0),
        claimed=True,
        local_test={"accuracy": float("nan")},
    )
    bare = RoundRecord(round=3, status="failed")
    writer = HistoryWriter(history)
    writer.round_finished(full)
    writer.round_finished(bare)
    lines = [json.loads(x) for x in history.path.read_text().splitlines()]
    base = {
        "round", "update_cid", "aggregate_cid", "accepted", "left_out", "scores_root", "score",
        "seconds", "status", "agreed", "dissent", "not_trained",
    }  # fmt: skip
    assert set(lines[1]) == base  # the format history.jsonl always had
    assert set(lines[0]) == base | {"gossip", "claimed", "local_test"}
    assert lines[0]["local_test"] == {"accuracy": None}
    back = history.records()
    assert back[1] == bare
    assert back[0].gossip == full.gossip and back[0].accepted == full.accepted
