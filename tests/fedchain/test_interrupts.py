"""Stop signals reach fedchain even when inherited ignored, or when a library eats the exception."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

# The child ignores SIGINT before installing the handlers (as a background job inherits it), then
# swallows the first KeyboardInterrupt the way a careless library would; only the record of the
# signal can still end it.
CHILD = """
import signal, sys, time
from fedchain.interrupts import interrupt_on_signals, raise_if_interrupted, received_signal
interrupt_on_signals()
try:
    print("ready", flush=True)  # inside the try: the signal may arrive while this prints
    time.sleep(60)
except KeyboardInterrupt:
    pass  # lost by a library
try:
    raise_if_interrupted()
except KeyboardInterrupt:
    print("stopped by", received_signal(), flush=True)
    sys.exit(130)
print("slept out", flush=True)
"""


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_is_remembered_after_its_exception_is_lost(sig: signal.Signals) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    child.send_signal(sig)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 130
    assert output.strip() == f"stopped by {int(sig)}"
