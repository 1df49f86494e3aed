"""``fedchain devnet``: it says when a service it started dies, and ``--state`` resumes it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from eth_account import Account

from fedchain.interrupts import EXIT_INTERRUPTED
from fedchain.localnet.process_record import read_process_record
from fedchain.localnet.procs import port_is_open
from peer.ledger.client import FederationClient, connect
from tests.e2e.conftest import require_chain
from tests.e2e.test_demo import assert_nothing_left

pytestmark = pytest.mark.e2e

FEDCHAIN = str(Path(sys.executable).parent / "fedchain")
READY = "Ctrl-C stops the chain"


class Devnet:
    """One ``fedchain devnet`` process, its output in a file that the test polls."""

    def __init__(self, folder: Path, log: Path, *extra: str) -> None:
        self.folder, self.log = folder, log
        argv = [FEDCHAIN, "devnet", "--hospitals", "2", "--rounds", "3", "--state", str(folder)]
        with log.open("w") as sink:
            self.proc = subprocess.Popen(
                [*argv, *extra], stdout=sink, stderr=subprocess.STDOUT, text=True
            )

    def output(self) -> str:
        return self.log.read_text()

    def wait_output(self, needle: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.output():
            if self.proc.poll() is not None:
                pytest.fail(f"devnet exited {self.proc.returncode}:\n{self.output()}")
            if time.monotonic() > deadline:
                pytest.fail(f"devnet never printed {needle!r}:\n{self.output()}")
            time.sleep(0.2)

    def interrupt(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        assert self.proc.wait(timeout=120) == EXIT_INTERRUPTED, self.output()
        assert "Traceback" not in self.output(), self.output()
        assert_nothing_left(read_process_record(self.folder / "processes.json"), self.output())

    def config(self, name: str) -> dict[str, dict[str, object]]:
        path = self.folder / "hospitals" / name / "config.toml"
        return tomllib.loads(path.read_text())


def _kubo_of(folder: Path, name: str) -> dict[str, object]:
    for entry in read_process_record(folder / "processes.json"):
        if f"hospitals/{name}/" in str(entry["log"]):
            return entry
    raise AssertionError(f"no Kubo of {name} in processes.json")


def test_a_dead_kubo_is_named_then_the_devnet_resumes_the_same_federation(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "devnet"
    first = Devnet(folder, tmp_path / "first.out")
    try:
        first.wait_output(READY)
        kubo = _kubo_of(folder, "hungary")
        os.killpg(int(str(kubo["pid"])), signal.SIGKILL)
        first.wait_output("the Kubo daemon of hungary stopped unexpectedly")
        line = next(x for x in first.output().splitlines() if "stopped unexpectedly" in x)
        assert str(folder / "hospitals" / "hungary" / "ipfs" / "daemon.log") in line
        assert "cleveland" not in first.output().split(READY, 1)[1]
        first.interrupt()
    finally:
        first.proc.kill()
    saved = json.loads((folder / "devnet.json").read_text())
    for private in ("devnet.json", "processes.json", "password", "hospitals/cleveland/config.toml"):
        assert stat.S_IMODE((folder / private).stat().st_mode) == 0o600, private
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    config_before = (folder / "hospitals" / "cleveland" / "config.toml").read_text()

    second = Devnet(folder, tmp_path / "second.out")
    try:
        second.wait_output(READY)
        assert "resumed the devnet" in second.output()
        assert f"contract   {saved['contract']}, task {saved['task_id']}" in second.output()
        assert (folder / "hospitals" / "cleveland" / "config.toml").read_text() == config_before
        chain = second.config("cleveland")["chain"]
        w3 = connect(str(chain["rpc_url"]))
        viewer = FederationClient(w3, str(chain["contract"]), Account.create())
        task = viewer.task(int(str(chain["task_id"])))
        assert (task.quorum, task.num_rounds) == (2, 3)
        expected = {
            "0x"
            + json.loads((folder / "hospitals" / n / "keys" / "eth.json").read_text())[
                "address"
            ].lower()
            for n in ("cleveland", "hungary")
        }
        assert {m.lower() for m in viewer.members()} == expected
        for name in ("cleveland", "hungary"):  # both Kubos are back on their saved ports
            ports = _kubo_of(folder, name)["ports"]
            assert isinstance(ports, list) and len(ports) == 2
            assert all(port_is_open("127.0.0.1", int(p)) for p in ports)
        second.interrupt()
    finally:
        second.proc.kill()


def test_an_impossible_quorum_is_refused_before_anything_starts(tmp_path: Path) -> None:
    done = subprocess.run(
        [FEDCHAIN, "devnet", "--hospitals", "2", "--quorum", "3", "--state", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "quorum 3 is impossible with 2 members; choose 1..2" in done.stderr
    assert not (tmp_path / "d" / "processes.json").exists()


def test_a_devnet_on_geth_keeps_its_chain_and_resumes_it(tmp_path: Path) -> None:
    """geth's data directory is the devnet's chain state: the same contract answers after a stop."""
    require_chain("geth")
    folder = tmp_path / "devnet"
    first = Devnet(folder, tmp_path / "first.out", "--chain", "geth")
    try:
        first.wait_output(READY)
        first.interrupt()
    finally:
        first.proc.kill()
    saved = json.loads((folder / "devnet.json").read_text())
    assert saved["chain"] == "geth" and (folder / "chain-geth" / "geth" / "chaindata").is_dir()
    second = Devnet(folder, tmp_path / "second.out", "--chain", "geth")
    try:
        second.wait_output(READY)
        assert "resumed the devnet" in second.output()
        chain = second.config("cleveland")["chain"]
        viewer = FederationClient(
            connect(str(chain["rpc_url"])), str(chain["contract"]), Account.create()
        )
        assert viewer.address.lower() == saved["contract"].lower()
        assert viewer.task(int(str(chain["task_id"]))).num_rounds == 3
        second.interrupt()
    finally:
        second.proc.kill()
