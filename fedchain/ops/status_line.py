"""One line of ``fedchain status``: what was checked, how it stands, and what to do."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Level(Enum):
    OK = "ok"
    WARN = "warn"
    """Worth a look, but nothing this institution runs is down."""
    FAIL = "FAIL"
    """Something is down or wrong: ``fedchain status`` exits non-zero."""
    SKIP = "skip"
    """Not checked, because a check it depends on failed."""


@dataclass(frozen=True)
class StatusLine:
    level: Level
    topic: str
    text: str
