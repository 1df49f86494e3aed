"""``fedchain status`` against a real federation: Anvil, the deployed contract, one Kubo per
institution and real peer processes; then with a wrong RPC URL, a non-member and a stopped Kubo.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from typer.testing import CliRunner

from consensus.task_spec import AggregationSpec, TrainingSettings
from fedchain.cli import app
from fedchain.errors import ToolchainError
from fedchain.localnet.devnet import LocalFederation, TaskParams, find_ipfs
from fedchain.localnet.procs import free_port, port_is_open
from fedchain.ops.init import init_institution
from fedchain.ops.peer_toml import PeerSettings
from fedchain.ops.status import exit_code, read_status
from fedchain.ops.status_line import Level, StatusLine
from models.tasks import get_task
from peer.config import load_config
from peer.ledger.events import ContributionClaimed

SPEC = get_task("heart").default_spec(
    name="heart-status",
    training=TrainingSettings(epochs=1, lr=0.05, batch_size=32, seed=3),
    aggregation=AggregationSpec(rule="fedavg"),
)
ROUNDS = 40  # more than the test lasts: the peers stay up while status reads them


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    try:
        find_ipfs()
    except ToolchainError as exc:
        pytest.fail(f"Kubo is required: {exc}")
    federation = LocalFederation(tmp_path_factory.mktemp("status"), ["cleveland", "hungary"])
    try:
        federation.start(TaskParams(spec=SPEC, rounds=ROUNDS, quorum=2))
        for name in federation.names:
            federation.spawn_peer(name)
        yield federation
    finally:
        federation.close()


def _claimed(fed: LocalFederation, name: str) -> list[ContributionClaimed]:
    assert fed.deployer is not None
    address = fed.hospital(name).identity.address
    return fed.deployer.events(ContributionClaimed, fed.task_id, None, address)


def _wait_for_a_claim(fed: LocalFederation, name: str, timeout: float = 150.0) -> None:
    deadline = time.monotonic() + timeout
    while not _claimed(fed, name):
        for peer, proc in fed.peers.items():
            if proc.returncode is not None:
                pytest.fail(f"peer {peer} exited {proc.returncode}:\n{proc.log_tail(40)}")
        if time.monotonic() > deadline:
            pytest.fail(f"{name} claimed nothing within {timeout} s")
        time.sleep(0.2)


def _by_topic(lines: list[StatusLine]) -> dict[str, StatusLine]:
    return {line.topic: line for line in lines}


def _variant(fed: LocalFederation, name: str, file: str, **chain: object) -> Path:
    """A copy of ``name``'s config beside it (same relative paths) with chain settings changed."""
    original = fed.hospital(name).config_path
    raw = tomllib.loads(original.read_text())
    raw["chain"].update(chain)
    path = original.parent / file
    path.write_text(tomli_w.dumps(raw))
    return path


def test_a_running_member_is_all_ok(fed: LocalFederation) -> None:
    _wait_for_a_claim(fed, "cleveland")
    h = fed.hospital("cleveland")
    assert port_is_open("127.0.0.1", h.gossip_port)
    lines = read_status(load_config(h.config_path), h.config_path)
    by = _by_topic(lines)
    assert [line.topic for line in lines] == [
        "keys",
        "chain RPC",
        "membership",
        "task",
        "own work",
        "credit",
        "Kubo",
        "gossip",
        "records",
    ]
    assert all(line.level is Level.OK for line in lines), lines
    assert exit_code(lines) == 0

    assert h.identity.address in by["keys"].text
    assert "chain 31337" in by["chain RPC"].text
    assert f"{h.identity.address} is a member (2 members), peer ID {h.identity.peer_id}" in (
        by["membership"].text
    )
    task = re.search(
        rf"task {fed.task_id}, round (\d+): (.*); (\d+) of {ROUNDS} rounds", by["task"].text
    )
    assert task is not None, by["task"].text
    assert int(task.group(3)) >= 1  # a claim means a finalized round
    assert re.search(r"updates in rounds 1(-\d+)?, attestations in rounds 1", by["own work"].text)

    # Credit: what the chain says this member holds, made of whole sample counts (200 each).
    credit = re.search(r"^credit (\d+); this task: (\d+) claimed in rounds 1", by["credit"].text)
    assert credit is not None, by["credit"].text
    assert int(credit.group(1)) > 0 and int(credit.group(1)) % 200 == 0
    assert int(credit.group(2)) == int(credit.group(1))  # one task only

    assert f"Kubo {h.kubo.peer_id} at {h.kubo.api_multiaddr} answers, 1 swarm peers" == (
        by["Kubo"].text
    )
    assert f"the node listens on 127.0.0.1:{h.gossip_port}" in by["gossip"].text
    assert re.search(
        r"\d+ rounds in .*history\.jsonl; last: round \d+ finalized", by["records"].text
    )


def test_wrong_rpc_url_is_the_failing_line_and_exit_1(fed: LocalFederation) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    config = _variant(fed, "hungary", "wrong-rpc.toml", rpc_url=url)
    result = CliRunner().invoke(app, ["status", "--config", str(config)])
    assert result.exit_code == 1, result.output
    failing = [line for line in result.output.splitlines() if line.startswith("FAIL")]
    assert len(failing) == 1, result.output
    assert f"the chain RPC at {url} is not reachable" in failing[0]
    assert "fix chain.rpc_url in" in failing[0]
    for topic in ("membership", "task", "own work", "credit"):
        assert re.search(rf"^skip {topic}\s+not checked: chain not readable", result.output, re.M)
    assert re.search(r"^ok\s+Kubo\s", result.output, re.M)


def test_a_non_member_shows_not_a_member(
    fed: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fed.chain is not None and fed.deployer is not None
    monkeypatch.setenv("OUTSIDER_PW", "outsider password")
    settings = PeerSettings(
        institution="outsider",
        rpc_url=fed.chain.rpc_url,
        contract=fed.deployer.address,
        task_id=fed.task_id,
        ipfs_api=fed.hospital("hungary").kubo.api_multiaddr,
        gossip_port=free_port(),
        partition="va",
        data_path=None,
        password_env="OUTSIDER_PW",
    )
    done = init_institution(settings, tmp_path, "outsider password", scrypt_n=2**12)
    lines = read_status(load_config(done.config), done.config)
    by = _by_topic(lines)
    assert by["membership"].level is Level.FAIL
    assert by["membership"].text.startswith(f"{done.address} is not a member of the federation")
    assert by["chain RPC"].level is Level.OK and by["task"].level is Level.OK
    assert by["keys"].text == f"both keystores decrypt: {done.address}"
    assert exit_code(lines) == 1


def test_a_stopped_kubo_is_the_failing_line_and_exit_1(fed: LocalFederation) -> None:
    h = fed.hospital("hungary")
    h.kubo.stop()
    lines = read_status(load_config(h.config_path), h.config_path)
    failing = [line for line in lines if line.level is Level.FAIL]
    assert [line.topic for line in failing] == ["Kubo"]
    assert f"Kubo RPC API at {h.kubo.api_multiaddr} is not reachable" in failing[0].text
    assert "start this institution's Kubo daemon, or fix ipfs.api in" in failing[0].text
    assert exit_code(lines) == 1


def test_the_placeholder_contract_of_a_fresh_init_is_named(
    fed: LocalFederation, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert fed.chain is not None
    monkeypatch.setenv("FRESH_PW", "fresh password")
    settings = PeerSettings(institution="fresh", rpc_url=fed.chain.rpc_url, password_env="FRESH_PW")
    done = init_institution(settings, tmp_path, "fresh password", scrypt_n=2**12)
    by = _by_topic(read_status(load_config(done.config), done.config))
    assert by["chain RPC"].level is Level.FAIL
    assert "chain.contract in" in by["chain RPC"].text and "still the placeholder" in (
        by["chain RPC"].text
    )
    assert f"`fedchain use-task --config {done.config}" in by["chain RPC"].text
    assert by["membership"].level is Level.SKIP
