"""The peer's own records: the state folder, the typed round record and ``history.jsonl``.

When a round ends the node publishes one :class:`RoundRecord` to its
:class:`RoundObserver` observers; :class:`HistoryWriter`, the observer every node has,
appends it to ``history.jsonl`` (one JSON object per line, the format the demo
and the end-to-end tests read).

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fedchain.errors import StateError
from fedchain.private_files import PRIVATE_FILE, private_dir

HISTORY_FILE = "history.jsonl"


@dataclass(frozen=True)
class GossipTotals:
    """Gossip messages since the node started (a flood shows up in every record)."""

    accepted: int
    rejected: Mapping[str, int]
    inbox_dropped: int
    outbound_dropped: int


@dataclass(frozen=True)
class RoundRecord:
    """What one peer saw and did in one ended round; one line of ``history.jsonl``.

    Always written: ``round`` .. ``not_trained``.  Written only when they apply: ``no_credit``,
    ``update_bytes``,
    ``epsilon`` (differential privacy),
    ``missed`` (the round ended while this peer was down), ``gossip``, ``claimed`` (finalized
    rounds),
    ``local_test`` (metrics of the agreed model on the local test split) or ``not_evaluated``.
    """

    round: int
    status: str
    """"finalized" or "failed"."""
    update_cid: str | None = None
    aggregate_cid: str | None = None
    """The aggregate this peer computed and attested (None: it did not aggregate)."""
    accepted: tuple[str, ...] = ()
    left_out: Mapping[str, str] = field(default_factory=dict)
    no_credit: Mapping[str, str] = field(default_factory=dict)
    """Members whose update was used or checked but earned 0 credit, with the reason."""
    scores_root: str | None = None
    score: int | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)
    agreed: bool | None = None
    """Whether this peer's aggregate is the agreed one (finalized rounds)."""
    dissent: tuple[str, ...] = ()
    not_trained: str | None = None
    epsilon: float | None = None
    """Differential privacy: the epsilon this institution has spent after this round's update."""
    missed: bool = False
    gossip: GossipTotals | None = None
    claimed: bool | None = None
    local_test: Mapping[str, float | None] | None = None
    not_evaluated: str | None = None
    update_bytes: int | None = None
    """Size of the update this peer sent (in the task's encoding), when it sent one."""

    def to_entry(self) -> dict[str, Any]:
        """The ``history.jsonl`` object of this record."""
        entry: dict[str, Any] = {
            "round": self.round,
            "update_cid": self.update_cid,
            "aggregate_cid": self.aggregate_cid,
            "accepted": list(self.accepted),
            "left_out": dict(self.left_out),
            "scores_root": self.scores_root,
            "score": self.score,
            "seconds": dict(self.seconds),
            "status": self.status,
            "agreed": self.agreed,
            "dissent": list(self.dissent),
            "not_trained": self.not_trained,
        }
        if self.no_credit:
            entry["no_credit"] = dict(self.no_credit)
        if self.epsilon is not None:
            entry["epsilon"] = self.epsilon
        if self.missed:
            entry["missed"] = True
        if self.gossip is not None:
            entry["gossip"] = {
                "accepted": self.gossip.accepted,
                "rejected": dict(self.gossip.rejected),
                "inbox_dropped": self.gossip.inbox_dropped,
                "outbound_dropped": self.gossip.outbound_dropped,
            }
        if self.claimed is not None:
            entry["claimed"] = self.claimed
        if self.local_test is not None:
            entry["local_test"] = dict(self.local_test)
        if self.not_evaluated is not None:
            entry["not_evaluated"] = self.not_evaluated
        if self.update_bytes is not None:
            entry["update_bytes"] = self.update_bytes
        return entry

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> RoundRecord:
        """Read back one ``history.jsonl`` object (unknown keys are ignored)."""
        gossip = entry.get("gossip")
        return cls(
            round=int(entry["round"]),
            status=str(entry.get("status", "")),
            update_cid=entry.get("update_cid"),
            aggregate_cid=entry.get("aggregate_cid"),
            accepted=tuple(entry.get("accepted") or ()),
            left_out=dict(entry.get("left_out") or {}),
            no_credit=dict(entry.get("no_credit") or {}),
            scores_root=entry.get("scores_root"),
            score=entry.get("score"),
            seconds=dict(entry.get("seconds") or {}),
            agreed=entry.get("agreed"),
            dissent=tuple(entry.get("dissent") or ()),
            not_trained=entry.get("not_trained"),
            epsilon=entry.get("epsilon"),
            missed=bool(entry.get("missed", False)),
            gossip=None
            if not isinstance(gossip, Mapping)
            else GossipTotals(
                accepted=int(gossip.get("accepted", 0)),
                rejected=dict(gossip.get("rejected") or {}),
                inbox_dropped=int(gossip.get("inbox_dropped", 0)),
                outbound_dropped=int(gossip.get("outbound_dropped", 0)),
            ),
            claimed=entry.get("claimed"),
            local_test=entry.get("local_test"),
            not_evaluated=entry.get("not_evaluated"),
            update_bytes=entry.get("update_bytes"),
        )


class RoundObserver(Protocol):
    """Told of every round a node has seen end, in round order, once per round and node run.

    Called on the node's background executor (a worker thread for a real peer, inline in the
    simulator); an exception raised here stops the node, as a failed history write does.
    """

    def round_finished(self, record: RoundRecord) -> None: ...


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

    def records(self) -> list[RoundRecord]:
        """Every readable entry as a typed record."""
        return [
            RoundRecord.from_entry(e) for e in self.entries() if isinstance(e.get("round"), int)
        ]


class HistoryWriter:
    """The observer that appends each round record to ``history.jsonl``."""

    def __init__(self, history: History) -> None:
        self.history = history

    def round_finished(self, record: RoundRecord) -> None:
        self.history.append(record.to_entry())
