"""Values the audit parts share: what they are given and what they hand back."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

Progress = Callable[[str], None]
"""Where a part reports what it is doing (one line at a time, for the console)."""


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit reads and writes, and how thorough it is."""

    repo: Path
    out_dir: Path
    """Generated files (Slither JSON, forge output, the raw matrix); not committed."""
    fast: bool = False
    """Fewer fuzz and invariant runs (forge's ``fast`` profile), for tests."""


@dataclass(frozen=True)
class PartResult:
    """One section of the report."""

    key: str
    title: str
    passed: bool
    summary: str
    """One line: the verdict's reason, shown on the console and in the summary table."""
    markdown: str
    """The section body (tables, lists), without its heading."""
    seconds: float = 0.0
