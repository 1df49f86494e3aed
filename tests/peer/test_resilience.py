"""Outage policy: one warning, capped backoff, one recovery line, a clear error after the limit."""

from __future__ import annotations

import logging

import pytest

from fedchain.errors import ServiceUnavailableError
from peer.resilience import OutageGuard


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_outage_is_logged_once_backs_off_and_recovers(caplog: pytest.LogCaptureFixture) -> None:
    t = FakeTime()
    guard = OutageGuard(max_outage=60, first_delay=0.5, max_delay=4, clock=t.clock, sleep=t.sleep)
    caplog.set_level(logging.INFO, logger="fedchain.peer")
    for _ in range(6):
        guard.failed(ServiceUnavailableError("chain RPC down"))
    assert t.sleeps == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    guard.succeeded()
    guard.succeeded()
    messages = [r.getMessage() for r in caplog.records]
    assert sum("service unavailable" in m for m in messages) == 1
    assert sum("answer again" in m for m in messages) == 1
    assert not guard.in_outage


def test_gives_up_after_the_configured_outage() -> None:
    t = FakeTime()
    guard = OutageGuard(max_outage=10, first_delay=1, max_delay=4, clock=t.clock, sleep=t.sleep)
    with pytest.raises(ServiceUnavailableError, match=r"protocol\.max_outage is 10 s"):
        for _ in range(100):
            guard.failed(ServiceUnavailableError("Kubo down"))
    assert t.now > 10
