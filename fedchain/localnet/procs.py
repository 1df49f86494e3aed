"""Process helpers shared by every launcher of an outside service.

Chains (Anvil, Ganache), Kubo daemons and peer processes are all started the
same way: in their own process group (so a stop also reaches any children),
with output in a log file (so a failed start can show what the program said),
and with a stop that escalates from SIGTERM to SIGKILL (so nothing is left
behind holding a port).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from fedchain.errors import ServiceUnavailableError, ToolchainError

LOG_TAIL_LINES = 30
"""How many lines of a process log are quoted in an error message."""
GROUP_EXIT_WAIT = 2.0
"""Seconds ``stop`` waits for SIGKILLed group members to disappear."""

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()
_start_listeners: list[Callable[[ManagedProcess], None]] = []


@contextlib.contextmanager
def on_process_start(listener: Callable[[ManagedProcess], None]) -> Iterator[None]:
    """Call ``listener`` with every ManagedProcess started inside the block, right after it starts.

    Launchers (the demo, the devnet) use it to record each child's PID the moment it
    exists, whichever helper started it, so that an interrupted start-up can be audited.
    """
    with _live_lock:
        _start_listeners.append(listener)
    try:
        yield
    finally:
        with _live_lock:
            _start_listeners.remove(listener)


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
"""Where Linux says which ports it hands to outgoing connections and to ``bind(0)``."""
LOWEST_CHOSEN_PORT = 20000
"""Ports handed out by ``free_port`` start here (above most well-known services)."""
_handed_out: set[tuple[str, int]] = set()
_handed_out_lock = threading.Lock()


def _ephemeral_floor() -> int:
    """The lowest port the kernel may give an outgoing connection (32768 when unknown)."""
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _binds(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is unused on ``host`` right now and was not handed out before.

    The port is chosen below the kernel's ephemeral range: a port from ``bind(0)``
    could be taken, before the program we start binds it, by any outgoing
    connection (a peer dialling Kubo, a test's HTTP client), which is how a Kubo
    daemon once failed with "address already in use". Ports handed out by this
    process are never handed out twice. Falls back to ``bind(0)`` when the range
    below the ephemeral one is exhausted.
    """
    floor = _ephemeral_floor()
    with _handed_out_lock:
        if floor - LOWEST_CHOSEN_PORT > 1000:
            for _ in range(200):
                port = random.randrange(LOWEST_CHOSEN_PORT, floor)
                if (host, port) not in _handed_out and _binds(host, port):
                    _handed_out.add((host, port))
                    return port
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            chosen: int = sock.getsockname()[1]
        _handed_out.add((host, chosen))
        return chosen


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
) -> None:
    """Poll ``predicate`` until it returns True, or raise after ``timeout`` s.

    ``what`` names the thing being waited for ("Kubo API on 127.0.0.1:5001")
    and is quoted in the error, so the operator knows which service failed.
    """
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return
        if time.monotonic() >= deadline:
            raise ServiceUnavailableError(f"{what} did not come up within {timeout:.1f} s")
        time.sleep(interval)


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class ManagedProcess:
    """A child program in its own process group, logging to a file.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.  Any
    instance still running when the interpreter exits is stopped then.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        log_path: Path,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        if not argv:
            raise ValueError("ManagedProcess needs a program to run (argv is empty)")
        self.argv = [str(a) for a in argv]
        self.log_path = log_path
        self.name = name or Path(self.argv[0]).name
        self._env = dict(env) if env is not None else None
        self._cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._stopped = False

    # -- state -------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id), or None before start."""
        return self._popen.pid if self._popen is not None else None

    @property
    def returncode(self) -> int | None:
        """Exit status once the process has ended, else None."""
        return self._popen.poll() if self._popen is not None else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of the log, for error messages."""
        return _tail(self.log_path, lines)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        """Start the program; raise ToolchainError if it cannot be executed."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started (pid {self._popen.pid})")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            try:
                self._popen = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=self._env,
                    cwd=self._cwd,
                    start_new_session=True,
                )
            except OSError as exc:
                raise ToolchainError(
                    f"cannot run {self.name} ({' '.join(self.argv)}): {exc}; "
                    "check that the program is installed and executable"
                ) from exc
        with _live_lock:
            _live.add(self)
            listeners = list(_start_listeners)
        for listener in listeners:
            listener(self)

    def raise_if_exited(self, what: str) -> None:
        """Raise ServiceUnavailableError, quoting the log, if the process ended."""
        code = self.returncode
        if self._popen is not None and code is not None:
            raise ServiceUnavailableError(
                f"{self.name} exited with status {code} before {what}; "
                f"last lines of {self.log_path}:\n{self.log_tail()}"
            )

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Like :func:`wait_until`, but fail at once (with the log) if the process dies."""
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return
            self.raise_if_exited(what)
            if time.monotonic() >= deadline:
                raise ServiceUnavailableError(
                    f"{what} did not come up within {timeout:.1f} s although {self.name} "
                    f"is still running; last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the whole group, SIGKILL it after ``timeout`` s; return the exit status."""
        popen = self._popen
        if popen is None:
            return None
        if self._stopped:
            return popen.returncode
        pgid = popen.pid  # start_new_session makes the child its group leader
        _signal_group(pgid, signal.SIGTERM)
        try:
            popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            popen.wait()
        # Children that outlived the leader (if any) get no second chance.
        _signal_group(pgid, signal.SIGKILL)
        _wait_group_gone(pgid, GROUP_EXIT_WAIT)
        self._stopped = True
        with _live_lock:
            _live.discard(self)
        return popen.returncode

    def __enter__(self) -> ManagedProcess:
        if self._popen is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exit={self.returncode}"
        return f"ManagedProcess({self.name!r}, pid={self.pid}, {state})"


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _wait_group_gone(pgid: int, timeout: float) -> None:
    """Give killed group members a moment to die (signals are delivered asynchronously).

    Bounded, because orphaned zombies stay group members until PID 1 reaps them,
    which some container init processes never do.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


@atexit.register
def _stop_all_at_exit() -> None:
    with _live_lock:
        live = list(_live)
    for proc in live:
        proc.stop(timeout=3.0)
