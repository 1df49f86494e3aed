"""Time as the node sees it: one small interface for deadlines, durations and waiting.

A real peer runs on :class:`SystemClock`.  The in-process simulator runs every
node and the in-memory chain on one :class:`VirtualClock`, whose time moves only
when the driver says so, so a run is reproducible and never sleeps.

``now()`` is compared with the chain's deadlines (unix seconds, as the contract's
``block.timestamp``); ``monotonic()`` measures durations; ``sleep()`` waits.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Unix seconds, comparable with the chain's deadlines."""
        ...

    def monotonic(self) -> float:
        """Seconds for durations; never goes back."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        ...


class SystemClock:
    """The machine's clocks."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """A clock whose time only moves when told: by :meth:`advance`, :meth:`advance_to`, or by
    :meth:`sleep`, which moves it forward instead of blocking (thread-safe)."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = float(start)
        self._start = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._t

    def monotonic(self) -> float:
        with self._lock:
            return self._t - self._start

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds} s)")
        with self._lock:
            self._t += seconds

    def advance_to(self, t: float) -> None:
        """Move to unix time ``t`` (no-op if already past it)."""
        with self._lock:
            self._t = max(self._t, float(t))
