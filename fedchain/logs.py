"""How fedchain's processes log: readable lines by default, JSON lines for machines.

Every component logs under its own name below ``fedchain`` (``fedchain.peer.node``,
``fedchain.peer.gossip``, ``fedchain.ledger``, ``fedchain.content``, ``fedchain.devnet``, ...),
so one component can be silenced or raised on its own.  ``--log-format json`` writes one
object per line (time, level, logger, message and any ``extra=`` fields), for log shippers;
the choice is passed on to child processes (peers started by the demo) through
:data:`FORMAT_ENV`.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
FORMATS: tuple[LogFormat, ...] = ("text", "json")
FORMAT_ENV = "FEDCHAIN_LOG_FORMAT"
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
QUIET_LIBRARIES = ("libp2p", "multiaddr", "web3", "urllib3", "ipfshttpclient", "async_service")
"""Chatty third-party loggers kept at WARNING."""

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}
"""Attributes every LogRecord has; anything else on a record came from ``extra=``."""


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def log_format_from_env() -> LogFormat:
    """The format a parent process chose for this one (``text`` when none or unknown)."""
    value = os.environ.get(FORMAT_ENV, "text")
    return "json" if value == "json" else "text"


def setup_logging(verbose: bool = False, log_format: LogFormat | None = None) -> None:
    """Send every log record to stderr in ``log_format`` (default: what :data:`FORMAT_ENV` says).

    Replaces handlers set earlier, so calling it twice (a command after the global option)
    leaves one handler.
    """
    fmt = log_format or log_format_from_env()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO, handlers=[handler], force=True
    )
    for noisy in QUIET_LIBRARIES:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def choose_log_format(log_format: LogFormat) -> None:
    """Make ``log_format`` this process's and its children's format."""
    os.environ[FORMAT_ENV] = log_format


def error_line(message: str, logger: str = "fedchain.cli") -> str:
    """A command's final error as one stderr line in the chosen format."""
    if log_format_from_env() != "json":
        return f"fedchain: error: {message}"
    record = logging.makeLogRecord(
        {"name": logger, "levelno": logging.ERROR, "levelname": "ERROR", "msg": message}
    )
    return JsonLineFormatter().format(record)


class Progress:
    """Log lines saying how far a long step is: one per ``step`` of the way (default 25%).

    ``quiet_for`` seconds pass before the first line, so a step that turns out quick stays
    silent; each line carries ``done``/``total`` as extra fields for JSON logs.
    """

    def __init__(
        self,
        log: logging.Logger,
        what: str,
        total: int,
        *,
        unit: str = "",
        step: float = 0.25,
        quiet_for: float = 0.0,
    ) -> None:
        self.log, self.what, self.total, self.unit = log, what, max(total, 1), unit
        self.step = step
        self._next = step
        self._quiet_until = time.monotonic() + quiet_for

    def update(self, done: int) -> None:
        fraction = done / self.total
        if fraction < self._next or time.monotonic() < self._quiet_until:
            return
        while self._next <= fraction:
            self._next += self.step
        self.log.info(
            "%s: %d%% (%s of %s)",
            self.what,
            min(100, int(fraction * 100)),
            self._amount(done),
            self._amount(self.total),
            extra={"done": done, "total": self.total, "unit": self.unit or None},
        )

    def _amount(self, n: int) -> str:
        if self.unit == "bytes":
            return f"{n / 2**20:.1f} MiB"
        return f"{n} {self.unit}".rstrip()
