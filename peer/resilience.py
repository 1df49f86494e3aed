"""Riding out a blip of the chain RPC or the peer's own Kubo.

The round loop re-reads everything from the chain on each pass, so after an
outage it only needs to try again.  This module decides how long to wait between
tries (exponential backoff, capped), logs once when an outage starts and once
when it ends, and gives up with a clear error only after the configured outage
time, so a hospital's service restart never kills the peer, and a dead service
is still reported instead of being waited on forever.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fedchain.errors import ServiceUnavailableError

log = logging.getLogger("fedchain.peer.resilience")


@dataclass
class OutageGuard:
    """Tracks one ongoing outage across loop passes."""

    max_outage: float
    first_delay: float = 0.5
    max_delay: float = 10.0
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _since: float | None = field(default=None, init=False)
    _delay: float = field(default=0.0, init=False)
    _what: str = field(default="", init=False)

    @property
    def in_outage(self) -> bool:
        return self._since is not None

    def failed(self, error: ServiceUnavailableError) -> None:
        """Note a failed pass, wait before the next one, or raise once the outage is too long."""
        now = self.clock()
        if self._since is None:
            self._since, self._delay, self._what = now, self.first_delay, str(error)
            log.warning(
                "service unavailable, retrying for up to %.0f s: %s", self.max_outage, error
            )
        elif now - self._since > self.max_outage:
            raise ServiceUnavailableError(
                f"gave up after {now - self._since:.0f} s of outage "
                f"(protocol.max_outage is {self.max_outage:.0f} s): {error}"
            ) from None
        else:
            self._delay = min(self._delay * 2, self.max_delay)
        log.debug("retrying in %.1f s: %s", self._delay, error)
        self.sleep(self._delay)

    def succeeded(self) -> None:
        """Note a pass that reached every service; logs once if that ends an outage."""
        if self._since is not None:
            log.info(
                "services answer again after %.1f s (%s); resuming from the chain",
                self.clock() - self._since,
                self._what,
            )
            self._since = None
