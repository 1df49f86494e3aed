"""The peer's own records: the state folder and its ``history.jsonl``.

The state folder is checked before anything slow starts (a folder, or one that
can be made, and writable), and every write names the file and what to do when it
fails, so a full or read-only disk is one clear error line, not a traceback in
the middle of a federation.  Files are created readable by their owner only: the
history names the institution's updates, scores and local test metrics.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from fedchain.errors import StateError
from fedchain.private_files import PRIVATE_FILE, private_dir

HISTORY_FILE = "history.jsonl"


def _hint(path: Path, exc: OSError) -> str:
    return f"{path}: {exc.strerror or exc}; fix state_dir in the config or free the disk"


def prepare_state_dir(path: Path) -> Path:
    """Make sure ``path`` is a folder this process can write to, creating it (0700) if needed."""
    if path.exists() and not path.is_dir():
        raise StateError(f"state_dir {path} is a file, not a folder; point state_dir elsewhere")
    try:
        private_dir(path)
        fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise StateError(f"state_dir is not writable: {_hint(path, exc)}") from None
    history = path / HISTORY_FILE
    if history.exists() and not history.is_file():
        raise StateError(f"{history} is not a file; move it away so the peer can keep its record")
    return path


def _json_safe(value: Any) -> Any:
    """NaN and infinities become null, so every line is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


class History:
    """Append-only per-round record, one JSON object per line."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / HISTORY_FILE

    def append(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(_json_safe(entry), sort_keys=True, allow_nan=False) + "\n"
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, PRIVATE_FILE)
            with os.fdopen(fd, "r+b") as fh:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = "\n" + line  # a line torn by a crash stays on its own
                fh.write(line.encode("utf-8"))
        except OSError as exc:
            raise StateError(f"cannot write the peer's history: {_hint(self.path, exc)}") from None

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every readable entry so far (a torn last line from a crash is skipped)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot read the peer's history: {_hint(self.path, exc)}") from None
        for line in text.splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                yield entry

    def rounds(self) -> set[int]:
        return {int(e["round"]) for e in self.entries() if isinstance(e.get("round"), int)}
