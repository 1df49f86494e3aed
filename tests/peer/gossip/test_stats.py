"""GossipCounters: totals for stats(), and one summary line per window with something to say."""

from __future__ import annotations

import pytest

from peer.gossip.stats import GossipCounters


def test_summary_reports_only_what_happened_since_the_last_one() -> None:
    counters = GossipCounters()
    assert counters.summary(60) is None  # nothing yet: no line
    for _ in range(400):
        counters.rejected("bad signature")
    for _ in range(12):
        counters.rejected("non-member")
    counters.accepted()
    assert counters.summary(60) == (
        "gossip: 412 messages rejected in the last 60 s (bad signature 400, non-member 12); "
        "0 dropped (inbox full), 0 not sent (peer queue full)"
    )
    counters.accepted()
    assert counters.summary(60) is None, "accepted messages alone are not worth a line"
    counters.inbox_dropped()
    counters.outbound_dropped()
    counters.rejected("non-member")
    assert counters.summary(60) == (
        "gossip: 1 messages rejected in the last 60 s (non-member 1); "
        "1 dropped (inbox full), 1 not sent (peer queue full)"
    )


def test_stats_are_totals_and_cannot_be_changed_by_the_reader() -> None:
    counters = GossipCounters()
    counters.rejected("malformed")
    counters.summary(60)  # reporting a window does not reset the totals
    counters.rejected("malformed")
    counters.accepted()
    stats = counters.snapshot()
    assert (stats.accepted, dict(stats.rejected), stats.rejected_total) == (
        1,
        {"malformed": 2},
        2,
    )
    with pytest.raises(TypeError):
        stats.rejected["malformed"] = 0  # type: ignore[index]
