"""Process helpers, exercised with real child processes."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from fedchain.errors import ServiceUnavailableError, ToolchainError
from fedchain.localnet.procs import (
    ManagedProcess,
    free_port,
    on_process_start,
    port_is_open,
    wait_until,
)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def test_free_port_can_be_bound_on_loopback():
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen(1)
        assert port_is_open("127.0.0.1", port)
    assert not port_is_open("127.0.0.1", port)


def test_free_port_stays_below_the_ephemeral_range_and_never_repeats():
    # Outgoing connections take ports from the ephemeral range; a port chosen
    # there could be stolen before the daemon binds it.
    from fedchain.localnet.procs import _ephemeral_floor

    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    assert all(port < _ephemeral_floor() for port in ports)


def test_wait_until_returns_once_the_predicate_holds():
    start = time.monotonic()
    wait_until(lambda: time.monotonic() - start > 0.2, timeout=5, what="the clock")


def test_wait_until_names_what_did_not_come_up():
    with pytest.raises(ServiceUnavailableError, match="the unicorn service did not come up"):
        wait_until(lambda: False, timeout=0.2, what="the unicorn service")


def test_output_goes_to_the_log_file(tmp_path: Path):
    log = tmp_path / "logs" / "echo.log"
    proc = ManagedProcess([sys.executable, "-c", "print('hello from child')"], log_path=log)
    proc.start()
    wait_until(lambda: proc.returncode is not None, 10, "child to finish")
    assert proc.stop() == 0
    assert "hello from child" in proc.log_tail()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_stop_terminates_the_whole_process_group(tmp_path: Path):
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    with ManagedProcess([sys.executable, "-c", script], log_path=tmp_path / "g.log") as proc:
        pid = proc.pid
        assert pid is not None
        wait_until(lambda: len(_group_members(pid)) == 2, 10, "parent and child")
    assert proc.returncode == -signal.SIGTERM
    assert _group_members(pid) == []


def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path):
    # Left alone, the child would print "slept out" and exit 0 after 60 s: a SIGKILL status
    # and no such line prove that stop() escalated instead of waiting for it.
    script = (
        "import signal, time, sys; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
        "print('ready', flush=True); time.sleep(60); print('slept out', flush=True)"
    )
    log = tmp_path / "stubborn.log"
    proc = ManagedProcess([sys.executable, "-c", script], log_path=log, name="stubborn")
    proc.start()
    proc.wait_until(lambda: "ready" in log.read_text(), 10, "stubborn to ignore SIGTERM")
    assert proc.stop(timeout=0.5) == -signal.SIGKILL
    assert proc.pid is not None and not _alive(proc.pid)
    assert "slept out" not in log.read_text()


def test_start_listeners_see_each_process_once_and_only_inside_their_block(tmp_path: Path):
    seen: list[int | None] = []
    argv = [sys.executable, "-c", "pass"]
    with on_process_start(lambda p: seen.append(p.pid)):
        with ManagedProcess(argv, log_path=tmp_path / "a.log") as first:
            pass
        with ManagedProcess(argv, log_path=tmp_path / "b.log") as second:
            pass
    with ManagedProcess(argv, log_path=tmp_path / "c.log"):
        pass
    assert seen == [first.pid, second.pid]


def test_early_exit_is_reported_with_status_and_log_tail(tmp_path: Path):
    script = "import sys; print('config file is broken', flush=True); sys.exit(3)"
    proc = ManagedProcess([sys.executable, "-c", script], log_path=tmp_path / "x.log", name="svc")
    proc.start()
    with pytest.raises(ServiceUnavailableError) as caught:
        proc.wait_until(lambda: False, 10, "svc API")
    message = str(caught.value)
    assert "svc exited with status 3 before svc API" in message
    assert "config file is broken" in message
    proc.stop()


def test_timeout_while_running_quotes_the_log(tmp_path: Path):
    script = "import time; print('still warming up', flush=True); time.sleep(60)"
    pattern = r"(?s)within 0\.5 s.*still warming up"
    with (
        ManagedProcess([sys.executable, "-c", script], log_path=tmp_path / "w.log") as proc,
        pytest.raises(ServiceUnavailableError, match=pattern),
    ):
        time.sleep(0.3)
        proc.wait_until(lambda: False, 0.5, "the slow thing")


def test_unrunnable_program_is_a_toolchain_error(tmp_path: Path):
    proc = ManagedProcess([str(tmp_path / "missing-binary")], log_path=tmp_path / "m.log")
    with pytest.raises(ToolchainError, match="missing-binary"):
        proc.start()
    assert proc.stop() is None


def test_stop_before_start_and_double_stop_are_harmless(tmp_path: Path):
    proc = ManagedProcess([sys.executable, "-c", "pass"], log_path=tmp_path / "n.log")
    assert proc.stop() is None
    proc.start()
    proc.stop()
    proc.stop()
    assert not proc.is_running()


def test_empty_argv_is_rejected(tmp_path: Path):
    with pytest.raises(ValueError, match="argv"):
        ManagedProcess([], log_path=tmp_path / "e.log")
