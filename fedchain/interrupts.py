"""Ctrl-C and SIGTERM end every fedchain command the same way, whatever the parent left behind.

A program started as a background job inherits SIGINT *ignored*, and Python then
leaves it ignored, so Ctrl-C would do nothing; and a KeyboardInterrupt raised while
a C extension runs can be swallowed there.  So the CLI installs one handler for
both signals that remembers the signal and raises KeyboardInterrupt; long loops
call :func:`raise_if_interrupted`, and the exit code is decided from the record,
not from whether the exception made it all the way up.
"""

from __future__ import annotations

import signal
from types import FrameType

EXIT_INTERRUPTED = 130
"""The shell's code for a command ended by Ctrl-C; fedchain uses it for SIGTERM too."""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_received: list[int] = []


def _on_stop_signal(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
    raise KeyboardInterrupt


def interrupt_on_signals() -> None:
    """From now on SIGINT and SIGTERM raise KeyboardInterrupt (and are remembered)."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, _on_stop_signal)


def received_signal() -> int | None:
    """The first stop signal received since start-up, if any."""
    return _received[0] if _received else None


def raise_if_interrupted() -> None:
    """Raise KeyboardInterrupt again if a stop signal arrived but its exception was lost."""
    if _received:
        raise KeyboardInterrupt
