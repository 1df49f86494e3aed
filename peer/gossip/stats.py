"""Counters of what the gossip layer accepted, rejected and dropped.

A flood of bad messages must be visible without filling the log: each rejection
is logged at DEBUG only, and :meth:`GossipCounters.summary` produces one line per
reporting window, and only when something was rejected or dropped in it.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


@dataclass(frozen=True)
class GossipStats:
    """Totals since the gossip host was created."""

    accepted: int = 0
    rejected: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    inbox_dropped: int = 0  # valid messages lost because receive() was not called in time
    outbound_dropped: int = 0  # messages to a peer lost because its send queue was full

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


class GossipCounters:
    """Thread-safe counters; the trio thread writes, any thread reads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accepted = 0
        self._rejected: Counter[str] = Counter()
        self._inbox_dropped = 0
        self._outbound_dropped = 0
        self._reported = GossipStats()

    def accepted(self) -> None:
        with self._lock:
            self._accepted += 1

    def rejected(self, reason: str) -> None:
        with self._lock:
            self._rejected[reason] += 1

    def inbox_dropped(self) -> None:
        with self._lock:
            self._inbox_dropped += 1

    def outbound_dropped(self) -> None:
        with self._lock:
            self._outbound_dropped += 1

    def snapshot(self) -> GossipStats:
        with self._lock:
            return GossipStats(
                accepted=self._accepted,
                rejected=MappingProxyType(dict(self._rejected)),
                inbox_dropped=self._inbox_dropped,
                outbound_dropped=self._outbound_dropped,
            )

    def summary(self, window_seconds: float) -> str | None:
        """One line on what went wrong since the last call, or None if nothing did.

        Called from one thread only (the gossip host's reporter task).
        """
        now = self.snapshot()
        before, self._reported = self._reported, now
        rejected = Counter(now.rejected)
        rejected.subtract(before.rejected)
        inbox = now.inbox_dropped - before.inbox_dropped
        outbound = now.outbound_dropped - before.outbound_dropped
        total = sum(rejected.values())
        if not (total or inbox or outbound):
            return None
        reasons = ", ".join(f"{reason} {n}" for reason, n in rejected.most_common() if n)
        by_reason = f" ({reasons})" if reasons else ""
        return (
            f"gossip: {total} messages rejected in the last {window_seconds:.0f} s{by_reason}; "
            f"{inbox} dropped (inbox full), {outbound} not sent (peer queue full)"
        )
