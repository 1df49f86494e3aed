"""A federation set up by commands only, as three institutions and a consortium would.

Two founders run ``fedchain init`` before the contract exists and before they know each other's
addresses, the consortium runs ``fedchain deploy`` and ``fedchain create-task``, each founder
points its config at them with ``fedchain use-task`` and at the others with ``fedchain
set-peers``; a third institution runs ``fedchain init`` with everything it was told, is admitted
by ``fedchain propose admit`` and ``fedchain approve``, and all three ``fedchain peer run`` the
configs exactly as those commands wrote them. The newcomer, admitted after round 1 opened,
joins from round 2. The only files written by the test are the consortium's own: the founders
list (from what ``init`` printed) and the task spec.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from consensus.protocol import RoundStatus
from fedchain.localnet.chain_node import AnvilNode, fund_accounts
from fedchain.localnet.devnet import FUNDING_WEI, find_ipfs
from fedchain.localnet.kubo_daemon import KuboDaemon, generate_swarm_key
from fedchain.localnet.procs import ManagedProcess, free_port
from fedchain.ops.run_data import load_run
from peer.config import load_config
from peer.ledger.client import FederationClient, connect
from tests.e2e.conftest import SPEC

pytestmark = pytest.mark.e2e

FEDCHAIN = str(Path(sys.executable).parent / "fedchain")
PASSWORD = "a long consortium passphrase"
FOUNDERS = ["cleveland", "hungary"]
NEWCOMER = "switzerland"


def fedchain(*args: str) -> str:
    """Run a fedchain command as an operator would; its stdout, or the test fails with stderr."""
    env = {**os.environ, "FEDCHAIN_KEY_PASSWORD": PASSWORD, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [FEDCHAIN, *args], capture_output=True, text=True, env=env, timeout=180, check=False
    )
    assert done.returncode == 0, f"fedchain {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def printed(output: str) -> dict[str, str]:
    """The identifiers ``fedchain init`` tells the institution to send to the consortium."""
    found = re.findall(r"^(address|peer id|encryption key)\s+(\S+)$", output, re.MULTILINE)
    return dict(found)


@pytest.fixture
def kubos(tmp_path: Path, ipfs_available: None) -> Iterator[dict[str, KuboDaemon]]:
    """One private-network Kubo per institution, each peered with the others."""
    key = generate_swarm_key()
    daemons = {
        name: KuboDaemon(
            find_ipfs(),
            tmp_path / "kubo" / name,
            api_port=free_port(),
            swarm_port=free_port(),
            swarm_key=key,
        )
        for name in [*FOUNDERS, NEWCOMER]
    }
    for kubo in daemons.values():
        kubo.init()
    for kubo in daemons.values():
        kubo.set_peering([k.swarm_multiaddr for k in daemons.values()])
    with contextlib.ExitStack() as stack:
        for kubo in daemons.values():
            stack.enter_context(kubo)
        yield daemons


def test_a_federation_founded_and_joined_by_commands_without_editing_a_file(
    tmp_path: Path, kubos: dict[str, KuboDaemon]
) -> None:
    started = time.monotonic()
    names = [*FOUNDERS, NEWCOMER]
    gossip_port = {name: free_port() for name in names}
    homes = {name: tmp_path / name for name in names}
    configs = {name: homes[name] / f"{name}.toml" for name in names}
    ids: dict[str, dict[str, str]] = {}

    def gossip_addr(name: str) -> str:
        return f"/ip4/127.0.0.1/tcp/{gossip_port[name]}/p2p/{ids[name]['peer id']}"

    def peers_of(name: str) -> list[str]:
        """The other Kubo nodes, and the gossip addresses of the institutions before it."""
        others = [k.swarm_multiaddr for n, k in kubos.items() if n != name]
        earlier = [gossip_addr(n) for n in names[: names.index(name)]]
        return [a for addr in others for a in ("--swarm-peer", addr)] + [
            a for addr in earlier for a in ("--bootstrap", addr)
        ]

    def init(name: str, *extra: str) -> None:
        ids[name] = printed(
            fedchain(
                "init",
                name,
                "--dir",
                str(homes[name]),
                "--rpc-url",
                chain.rpc_url,
                "--ipfs-api",
                kubos[name].api_multiaddr,
                "--gossip-host",
                "127.0.0.1",
                "--gossip-port",
                str(gossip_port[name]),
                "--partition",
                name,
                *extra,
            )
        )

    with AnvilNode(log_path=tmp_path / "anvil.log") as chain:
        faucet = Account.from_key(chain.dev_private_keys(1)[0])
        for name in FOUNDERS:
            init(name)  # before the contract exists (a placeholder) and with no peers yet
        fund_accounts(chain.rpc_url, faucet, [ids[n]["address"] for n in FOUNDERS], FUNDING_WEI)

        # The consortium: the founders list from what init printed, deploy, create the task.
        founders = tmp_path / "founders.json"
        founders.write_text(
            json.dumps(
                {
                    "founders": [
                        {"address": ids[n]["address"], "peer_id": ids[n]["peer id"]}
                        for n in FOUNDERS
                    ],
                    "approval_bps": 5001,
                }
            )
        )
        first_key = str(homes["cleveland"] / "keys" / "eth.json")
        contract = fedchain(
            "deploy", "--rpc-url", chain.rpc_url, "--keystore", first_key,
            "--founders", str(founders),
        ).split()[-1]  # fmt: skip
        spec = tmp_path / "task.json"
        spec.write_bytes(SPEC.to_bytes())
        task_id = fedchain(
            "create-task", "--rpc-url", chain.rpc_url, "--contract", contract,
            "--keystore", first_key, "--ipfs-api", kubos["cleveland"].api_multiaddr,
            "--spec", str(spec), "--rounds", "2", "--max-samples", "1000", "--quorum", "2",
            "--round-duration", "240", "--attest-duration", "240",
        ).split()[-1]  # fmt: skip
        for name in FOUNDERS:
            fedchain("use-task", "--config", str(configs[name]), "--task-id", task_id,
                     "--contract", contract)  # fmt: skip
            fedchain("set-peers", "--config", str(configs[name]), *peers_of(name))

        hungary = load_config(configs["hungary"])
        assert hungary.gossip.bootstrap == [gossip_addr("cleveland")]
        assert (hungary.chain.contract, hungary.chain.task_id) == (contract, int(task_id))
        # The newcomer is told everything at init, then admitted by the founders' votes.
        init(NEWCOMER, "--contract", contract, "--task-id", task_id, *peers_of(NEWCOMER))
        new = ids[NEWCOMER]
        fund_accounts(chain.rpc_url, faucet, [new["address"]], FUNDING_WEI)
        governance = ["--rpc-url", chain.rpc_url, "--contract", contract]
        proposed = fedchain(
            "propose", "admit", "--account", new["address"], "--peer-id", new["peer id"],
            *governance, "--keystore", first_key,
        )  # fmt: skip
        number = re.search(r"proposal (\d+)", proposed)
        assert number is not None, proposed
        fedchain(
            "approve", number.group(1), *governance,
            "--keystore", str(homes["hungary"] / "keys" / "eth.json"),
        )  # fmt: skip
        client = FederationClient(connect(chain.rpc_url), contract, faucet)
        assert client.is_member(new["address"])

        peers = {}
        env = {"OMP_NUM_THREADS": "1", **os.environ, "FEDCHAIN_KEY_PASSWORD": PASSWORD}
        try:
            for name in names:
                peers[name] = ManagedProcess(
                    [FEDCHAIN, "peer", "run", "--config", str(configs[name])],
                    log_path=tmp_path / f"peer-{name}.log",
                    name=f"peer-{name}",
                    env=env,
                )
                peers[name].start()
            deadline = time.monotonic() + 300
            while not client.task(int(task_id)).completed:
                for name, proc in peers.items():
                    assert proc.returncode in (None, 0), f"{name}:\n{proc.log_tail(60)}"
                logs = "\n".join(p.log_tail(40) for p in peers.values())
                assert time.monotonic() < deadline, f"the task did not complete:\n{logs}"
                time.sleep(0.3)
            for name, proc in peers.items():
                proc.wait_until(lambda p=proc: not p.is_running(), 60, f"{name} leaves")
                assert proc.returncode == 0, proc.log_tail(60)
        finally:
            for proc in peers.values():
                proc.stop(timeout=10)

        rounds = [client.round_info(int(task_id), n) for n in (1, 2)]
        assert [RoundStatus(r.status) for r in rounds] == [RoundStatus.FINALIZED] * 2
        assert [r.eligible for r in rounds] == [2, 3]  # the newcomer from round 2
        histories = {
            name: [
                json.loads(line)
                for line in (homes[name] / "state" / "history.jsonl").read_text().splitlines()
            ]
            for name in names
        }
        assert [e["round"] for e in histories["cleveland"]] == [1, 2]
        # Round 2 took the newcomer's update, and every peer agreed on its aggregate.
        for name in names:
            last = histories[name][-1]
            assert last["round"] == 2 and last["agreed"] is True, last
            assert len(last["accepted"]) == 3 and not last["left_out"], last
            assert last["gossip"]["accepted"] > 0, last  # the bootstrap lists linked them
            # init's config asks for the local-only baseline: trained after the task, and
            # shown by the report beside the agreed model's figure on the own test split.
            state = homes[name] / "state"
            baseline = json.loads((state / "local_only.json").read_text())
            assert baseline["rounds"] == 2 and baseline["epochs"] == 2 * SPEC.training.epochs
            (row,) = load_run(state).institutions
            assert row.name == name and row.local_only == baseline["metrics"]["auroc"]
            assert row.federated == last["local_test"]["auroc"]
            report = Path(fedchain("report", str(state)).split()[-1]).read_text()
            assert f"{row.local_only:.4f}" in report
    print(f"joined by commands: 3 institutions, 2 rounds in {time.monotonic() - started:.1f} s")
