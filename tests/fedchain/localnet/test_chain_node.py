"""Anvil, Ganache and geth launchers: free loopback port, RPC answers, stop without leftovers."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from eth_account import Account

from fedchain.errors import ServiceUnavailableError, ToolchainError
from fedchain.localnet import chain_node
from fedchain.localnet.chain_node import (
    CHAINS,
    AnvilNode,
    DevChain,
    GanacheNode,
    GethNode,
    GethUnavailable,
    find_geth,
    fund_accounts,
)
from fedchain.localnet.procs import wait_until


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("kind", ["anvil", "ganache"])
def test_starts_answers_and_stops_cleanly(kind: str, tmp_path: Path) -> None:
    node = CHAINS[kind](accounts=4, log_path=tmp_path / "chain.log")
    with node as running:
        assert running is node and node.is_running()
        url = node.rpc_url
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        assert int(node.rpc("eth_chainId"), 16) == node.chain_id
        # The derived dev keys are exactly the funded accounts the chain reports.
        keys = node.dev_private_keys(4)
        assert [Account.from_key(k).address.lower() for k in keys] == [
            a.lower() for a in node.rpc("eth_accounts")
        ]
        assert (
            int(node.rpc("eth_getBalance", [Account.from_key(keys[3]).address, "latest"]), 16)
            >= 10**21
        )
        block = node.rpc("eth_getBlockByNumber", ["latest", False])
        assert int(block["gasLimit"], 16) == chain_node.DEFAULT_GAS_LIMIT
        before = int(block["timestamp"], 16)
        after = node.time_advance(1000)
        assert after >= before + 1000
        assert node._proc is not None and node._proc.pid is not None
        pid = node._proc.pid
    assert not node.is_running() and not _pid_alive(pid) and not _port_open(port)
    with pytest.raises(ServiceUnavailableError):
        _ = node.rpc_url
    node.stop()  # a second stop is harmless


def test_chain_ids_and_accounts_differ_per_tool() -> None:
    assert (AnvilNode.chain_id, GanacheNode.chain_id) == (31337, 1337)
    anvil, ganache = AnvilNode(accounts=2), GanacheNode(accounts=2)
    assert anvil.dev_private_keys(2) != ganache.dev_private_keys(2)
    with pytest.raises(ValueError, match="accounts=3"):
        anvil.dev_private_keys(3)


def test_two_chains_run_side_by_side(tmp_path: Path) -> None:
    with AnvilNode(log_path=tmp_path / "a.log") as a, AnvilNode(log_path=tmp_path / "b.log") as b:
        assert a.rpc_url != b.rpc_url
        a.rpc("evm_mine")
        assert int(a.rpc("eth_blockNumber"), 16) == int(b.rpc("eth_blockNumber"), 16) + 1


def test_missing_tool_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chain_node, "NODE_BIN", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"make setup.*npm ci"):
        AnvilNode().start()


def test_a_chain_that_dies_at_start_is_reported_with_its_log(tmp_path: Path) -> None:
    class Broken(DevChain):
        name = "anvil"
        chain_id = 31337
        mnemonic = AnvilNode.mnemonic

        def _argv(self, program: Path, port: int) -> list[str]:
            return [str(program), "--port", str(port), "--no-such-flag"]

    with pytest.raises(ServiceUnavailableError, match="no-such-flag"):
        Broken(log_path=tmp_path / "broken.log", start_timeout=10).start()


@pytest.mark.parametrize("kind", ["anvil", "ganache"])
def test_a_chain_kept_on_disk_resumes_where_it_stopped(kind: str, tmp_path: Path) -> None:
    state = tmp_path / "state"
    receiver = Account.create().address
    first = CHAINS[kind](accounts=2, log_path=tmp_path / "first.log", state_path=state)
    with first:
        sender = Account.from_key(first.dev_private_keys(1)[0]).address
        tx = {"from": sender, "to": receiver, "value": hex(12345), "gas": hex(21_000)}
        first.rpc("eth_sendTransaction", [tx])
        first.rpc("evm_mine")
        height = int(first.rpc("eth_blockNumber"), 16)
    with CHAINS[kind](accounts=2, log_path=tmp_path / "second.log", state_path=state) as second:
        assert int(second.rpc("eth_getBalance", [receiver, "latest"]), 16) == 12345
        assert int(second.rpc("eth_blockNumber"), 16) >= height
    with CHAINS[kind](accounts=2, log_path=tmp_path / "fresh.log") as fresh:
        assert int(fresh.rpc("eth_getBalance", [receiver, "latest"]), 16) == 0


@pytest.fixture
def geth_available() -> None:
    try:
        find_geth()
    except GethUnavailable as exc:
        pytest.skip(str(exc))


def test_geth_funds_every_dev_account_seals_blocks_and_stops_cleanly(
    geth_available: None, tmp_path: Path
) -> None:
    node = GethNode(accounts=4, log_path=tmp_path / "geth.log")
    with node:
        assert int(node.rpc("eth_chainId"), 16) == GethNode.chain_id == 1337
        for key in node.dev_private_keys(4):
            balance = node.rpc("eth_getBalance", [Account.from_key(key).address, "latest"])
            assert int(balance, 16) >= chain_node.DEV_FUNDING_WEI
        block = node.rpc("eth_getBlockByNumber", ["latest", False])
        assert int(block["gasLimit"], 16) == chain_node.DEFAULT_GAS_LIMIT
        # With a block period, blocks come without any transaction to seal.
        height = int(block["number"], 16)
        wait_until(lambda: int(node.rpc("eth_blockNumber"), 16) > height, 30, "a new geth block")
        with pytest.raises(ToolchainError, match="cannot move block time"):
            node.time_advance(10)
        port, pid, datadir = node.port, node.pid, node._datadir
        assert port is not None and pid is not None and datadir is not None and datadir.is_dir()
    assert not node.is_running() and not _pid_alive(pid) and not _port_open(port)
    assert not datadir.exists(), "a throw-away geth data directory outlived its chain"


def test_geth_kept_on_disk_resumes_where_it_stopped(geth_available: None, tmp_path: Path) -> None:
    state = tmp_path / "state"
    receiver = Account.create().address
    with GethNode(accounts=2, log_path=tmp_path / "first.log", state_path=state) as first:
        funder = Account.from_key(first.dev_private_keys(1)[0])
        fund_accounts(first.rpc_url, funder, [receiver], 12345)
        height = int(first.rpc("eth_blockNumber"), 16)
    with GethNode(accounts=2, log_path=tmp_path / "second.log", state_path=state) as second:
        assert int(second.rpc("eth_getBalance", [receiver, "latest"]), 16) == 12345
        assert int(second.rpc("eth_blockNumber"), 16) >= height


def test_geth_marked_unavailable_says_why_and_how_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path_file = tmp_path / "geth-path"
    path_file.write_text("unavailable: scripts/install-geth failed\n")
    monkeypatch.setattr(chain_node, "GETH_PATH_FILE", path_file)
    monkeypatch.delenv("FEDCHAIN_GETH", raising=False)
    with pytest.raises(GethUnavailable, match=r"install-geth failed.*re-run `make test`"):
        GethNode().start()
    monkeypatch.setenv("FEDCHAIN_GETH", str(tmp_path / "no-such-geth"))
    with pytest.raises(ToolchainError, match=r"FEDCHAIN_GETH names .*no-such-geth"):
        GethNode().start()


def test_anvil_with_a_block_time_mines_blocks_by_itself(tmp_path: Path) -> None:
    """``block_time`` > 0: blocks come on a clock with no transaction sent, as on a real chain."""
    with AnvilNode(log_path=tmp_path / "anvil.log", block_time=1) as chain:
        deadline = time.monotonic() + 30
        while int(chain.rpc("eth_blockNumber"), 16) < 2:
            assert time.monotonic() < deadline, "Anvil mined no block in 30 s with --block-time 1"
            time.sleep(0.2)


def test_a_negative_block_time_is_refused() -> None:
    with pytest.raises(ValueError, match="block_time"):
        AnvilNode(block_time=-1)
