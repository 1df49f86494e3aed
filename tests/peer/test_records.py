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
