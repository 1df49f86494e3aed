"""``fedchain demo`` as a user runs it: a record on success, nothing left behind when stopped.

Every process the demo starts is listed with its PID and ports in ``processes.json`` in its
run folder; after the demo ends, each of those PIDs must be gone and each port closed.
"""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from fedchain.interrupts import EXIT_INTERRUPTED
from fedchain.localnet.process_record import read_process_record
from fedchain.localnet.procs import port_is_open

pytestmark = pytest.mark.e2e

FEDCHAIN = str(Path(sys.executable).parent / "fedchain")


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def assert_nothing_left(record: list[dict[str, Any]], output: str) -> None:
    """Every recorded process is gone and every recorded port (chain included) is closed."""
    assert record, "the run recorded no processes"
    alive = [e for e in record if _alive(int(e["pid"]))]
    listening = [(e["name"], p) for e in record for p in e["ports"] if port_is_open("127.0.0.1", p)]
    assert not alive and not listening, f"{alive} {listening}\n{output}"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def wait_for(check: Callable[[], bool], proc: subprocess.Popen[str], what: str) -> None:
    """Poll generously (start-up is slow on shared cores); fail at once if the demo ended."""
    deadline = time.monotonic() + 300
    while not check():
        if proc.poll() is not None:
            output, _ = proc.communicate()
            pytest.fail(f"the demo exited ({proc.returncode}) before {what}:\n{output}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def start_demo(
    out: Path, *, peers: int, rounds: int, preexec_fn: Callable[[], None] | None = None
) -> subprocess.Popen[str]:
    """The demo as a child process, its output (stderr included) on a pipe."""
    return subprocess.Popen(
        [FEDCHAIN, "demo", "--peers", str(peers), "--rounds", str(rounds), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=preexec_fn,
    )


def test_demo_writes_the_record(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = subprocess.run(
        [FEDCHAIN, "demo", "--peers", "2", "--rounds", "2", "--out", str(out), "--dashboard"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = json.loads((out / "record.json").read_text())
    assert record["chain_id"] == 31337 and record["contract"].startswith("0x")
    assert [r["round"] for r in record["rounds"]] == [1, 2]
    for r in record["rounds"]:
        assert set(r) >= {
            "round",
            "aggregate_cid",
            "finalize_tx",
            "finalize_block",
            "participants",
            "metrics",
            "seconds",
        }
        assert len(r["participants"]) == 2
        assert set(r["participants"][0]) == {"address", "update_cid", "num_samples"}
        assert r["metrics"]["primary_metric"] == "auroc"
        assert 0.0 <= r["metrics"]["pooled_primary"] <= 1.0
        assert 0.0 <= r["metrics"]["pooled"]["accuracy"] <= 1.0
        assert set(r["metrics"]["per_institution"]) == {"cleveland", "hungary"}
    institutions = record["institutions"]
    assert set(institutions) == {"cleveland", "hungary"}
    for m in institutions.values():
        assert 0.0 <= m["local_only_own_test"] <= 1.0 and 0.0 <= m["federated_own_test"] <= 1.0
        assert m["peer_peak_rss_mb"] > 50  # a live peer process (torch alone takes more)
    assert "finalized rounds" in proc.stdout
    assert f"report written to {out / 'report.html'}" in proc.stdout
    url = re.search(
        r"dashboard \(live while the federation runs\): (http://127\.0\.0\.1:\d+/)", proc.stdout
    )
    assert url is not None, proc.stdout
    assert f"dashboard was at {url.group(1)}" in proc.stdout.splitlines()[-1]
    report = (out / "report.html").read_text()
    assert record["rounds"][-1]["aggregate_cid"] in report and "data:image/png;base64," in report
    processes = read_process_record(out / "processes.json")
    names = sorted(e["name"] for e in processes)
    assert names == ["anvil", "kubo(ipfs)", "kubo(ipfs)", "peer-cleveland", "peer-hungary"]
    assert_nothing_left(processes, proc.stdout + proc.stderr)
    # Keys' password, configs and records are readable by their owner only.
    fed = out / "federation"
    for private in (out / "record.json", out / "processes.json", fed / "password"):
        assert mode(private) == 0o600, private
    for home in (fed / "hospitals" / "cleveland", fed / "hospitals" / "hungary"):
        assert mode(home) == mode(home / "keys") == 0o700, home
        assert mode(home / "config.toml") == 0o600, home
    for folder in (out, fed, fed / "hospitals", fed / "logs"):
        assert mode(folder) == 0o700, folder


def test_ctrl_c_stops_everything(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = start_demo(out, peers=2, rounds=50)
    logs = out / "federation" / "logs"

    def peers_joined() -> bool:
        found = [p.read_text() for p in logs.glob("peer-*.log")]
        return len(found) == 2 and all("joined task" in text for text in found)

    wait_for(peers_joined, proc, "both peers joined the task")
    before = read_process_record(out / "processes.json")
    assert sum(e["name"].startswith("peer-") for e in before) == 2
    assert all(_alive(int(e["pid"])) for e in before), before
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert "Traceback" not in output, output
    assert "interrupted; everything this command started was stopped" in output
    assert_nothing_left(read_process_record(out / "processes.json"), output)


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("stop_signal", "inherited"),
    [(signal.SIGTERM, None), (signal.SIGINT, _ignore_sigint)],
    ids=["sigterm", "ctrl-c-in-a-background-job-that-inherited-sigint-ignored"],
)
def test_a_stop_during_start_up_ends_cleanly(
    tmp_path: Path, stop_signal: signal.Signals, inherited: Callable[[], None] | None
) -> None:
    out = tmp_path / "run"
    proc = start_demo(out, peers=4, rounds=2, preexec_fn=inherited)

    def a_kubo_started() -> bool:
        record = read_process_record(out / "processes.json")
        return any(e["name"].startswith("kubo") for e in record)

    wait_for(a_kubo_started, proc, "the first Kubo daemon started")
    proc.send_signal(stop_signal)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == EXIT_INTERRUPTED, output
    assert "Traceback" not in output, output
    assert "finalized rounds" not in output
    assert_nothing_left(read_process_record(out / "processes.json"), output)
