"""The node's clocks and its inline executor."""

from __future__ import annotations

import pytest

from peer.clock import SystemClock, VirtualClock
from peer.executor import InlineExecutor


def test_virtual_clock_moves_only_when_told() -> None:
    clock = VirtualClock(start=1000.0)
    assert (clock.now(), clock.monotonic()) == (1000.0, 0.0)
    clock.sleep(2.5)
    clock.advance_to(1001.0)  # already past: no-op
    assert (clock.now(), clock.monotonic()) == (1002.5, 2.5)
    clock.advance_to(1010.0)
    assert clock.now() == 1010.0
    with pytest.raises(ValueError, match="cannot go back"):
        clock.advance(-1)


def test_system_clock_is_unix_time() -> None:
    clock = SystemClock()
    before = clock.monotonic()
    clock.sleep(0)
    assert clock.now() > 1.6e9 and clock.monotonic() >= before


def test_inline_executor_runs_at_the_call() -> None:
    ran: list[int] = []
    done = InlineExecutor().submit(ran.append, 1)
    assert ran == [1] and done.done() and done.result() is None
    failed = InlineExecutor().submit(int, "x")
    with pytest.raises(ValueError):
        failed.result()
