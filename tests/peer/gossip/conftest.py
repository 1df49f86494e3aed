"""Run gossip peers as real OS processes and talk to them over JSON lines."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HELPER_MODULE = "tests.peer.gossip._node"
# `import libp2p` takes 1-11 s per process on a busy 2-core machine.
STARTUP_TIMEOUT = 90.0


class PeerProcess:
    """One child process running ``tests/peer/gossip/_node.py``."""

    def __init__(self, args: list[str], stderr_path: Path) -> None:
        self.stderr_path = stderr_path
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
        self._stderr = stderr_path.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", HELPER_MODULE, *args],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict[str, Any]:
        """Next JSON event from the child; fail with its stderr if it is not ``event``."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no {event!r} from child within {timeout} s\n{self.stderr_tail()}")
        if line is None:
            pytest.fail(f"child exited before {event!r}\n{self.stderr_tail()}")
        message: dict[str, Any] = json.loads(line)
        assert message["event"] == event, (message, self.stderr_tail())
        return message

    def request(self, event: str, wait: float, **command: Any) -> dict[str, Any]:
        """Send ``command`` and wait up to ``wait`` seconds for the ``event`` answer."""
        self.send(**command)
        return self.expect(event, wait)

    def stderr_tail(self, chars: int = 4000) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """Close stdin (children exit on EOF), then wait, then kill as a last resort."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):  # broken pipe if the child died
                self.process.stdin.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self._stderr.close()


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Any]:
    """Factory starting helper processes; every one is stopped at teardown."""
    started: list[PeerProcess] = []

    def _spawn(*args: str) -> PeerProcess:
        peer = PeerProcess(list(args), tmp_path / f"peer{len(started)}.stderr")
        started.append(peer)
        return peer

    yield _spawn
    for peer in started:
        peer.stop()
