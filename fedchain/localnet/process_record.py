"""``processes.json``: every child process a launcher started, with its PID and ports.

Written again each time a process starts or a port becomes known, so that after
any interruption (Ctrl-C, SIGTERM, even mid start-up) an operator or a test can
check that each recorded PID is gone and each recorded port is closed.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from fedchain.localnet.procs import ManagedProcess
from fedchain.private_files import write_private_text


class ProcessRecord:
    """The record file of one launcher; only processes logging under ``root`` are recorded."""

    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root.resolve()
        self._entries: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def started(self, proc: ManagedProcess) -> None:
        """A ``on_process_start`` listener: record ``proc`` if it belongs to this launcher."""
        if proc.pid is None or self.root not in proc.log_path.resolve().parents:
            return
        with self._lock:
            self._entries[proc.pid] = {
                "name": proc.name,
                "pid": proc.pid,
                "ports": [],
                "log": str(proc.log_path),
            }
            self._write()

    def add_ports(self, pid: int | None, *ports: int) -> None:
        """Note the TCP ports the process with ``pid`` listens on (once they are known)."""
        with self._lock:
            entry = self._entries.get(pid) if pid is not None else None
            if entry is None:
                return
            entry["ports"] = sorted(set(entry["ports"]) | set(ports))
            self._write()

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(e) for e in self._entries.values()]

    def _write(self) -> None:
        data = {"processes": list(self._entries.values())}
        write_private_text(self.path, json.dumps(data, indent=2) + "\n")


def read_process_record(path: Path) -> list[dict[str, Any]]:
    """The entries of a ``processes.json`` (empty if none was written yet)."""
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = data["processes"]
    return entries
