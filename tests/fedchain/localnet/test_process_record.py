"""processes.json and owner-only files, with real child processes."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

from fedchain.localnet.process_record import ProcessRecord, read_process_record
from fedchain.localnet.procs import ManagedProcess, on_process_start
from fedchain.private_files import private_dir, write_private_text


def test_each_started_process_is_written_with_its_ports_as_they_become_known(
    tmp_path: Path,
) -> None:
    root = tmp_path / "run"
    record = ProcessRecord(root / "processes.json", root)
    argv = [sys.executable, "-c", "pass"]
    with on_process_start(record.started):
        with ManagedProcess(argv, log_path=root / "logs" / "a.log", name="a") as a:
            assert [e["pid"] for e in read_process_record(record.path)] == [a.pid]
            record.add_ports(a.pid, 4001, 5001)
        # A process of some other launcher (logging elsewhere) is not this run's.
        with ManagedProcess(argv, log_path=tmp_path / "elsewhere.log", name="other"):
            pass
    saved = read_process_record(record.path)
    assert [(e["name"], e["pid"], e["ports"]) for e in saved] == [("a", a.pid, [4001, 5001])]
    assert stat.S_IMODE(record.path.stat().st_mode) == 0o600


def test_no_record_yet_reads_as_empty(tmp_path: Path) -> None:
    assert read_process_record(tmp_path / "processes.json") == []


def test_private_files_and_folders_are_owner_only(tmp_path: Path) -> None:
    folder = private_dir(tmp_path / "a" / "b")
    write_private_text(folder / "f.txt", "secret")
    write_private_text(folder / "f.txt", "replaced")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / "f.txt").stat().st_mode) == 0o600
    assert (folder / "f.txt").read_text() == "replaced"
    assert [p.name for p in folder.iterdir()] == ["f.txt"]  # no temporary file left
