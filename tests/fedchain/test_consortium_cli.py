"""`fedchain deploy` and `fedchain create-task` against a real Anvil and a real Kubo."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from eth_account import Account

from consensus.protocol import default_quorum
from consensus.task_spec import TaskSpec
from fedchain.localnet.chain_node import AnvilNode
from fedchain.localnet.devnet import DEMO_SCRYPT_N, find_ipfs, fund_account
from fedchain.localnet.kubo_daemon import KuboDaemon
from fedchain.localnet.procs import free_port
from peer.content.kubo import KuboContentStore
from peer.identity import create_identity
from peer.keystore import write_keystore
from peer.ledger.client import FederationClient, connect
from tests.e2e.conftest import SPEC

FEDCHAIN = str(Path(sys.executable).parent / "fedchain")


def cli(*args: str, password: str = "pw") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FEDCHAIN_KEY_PASSWORD": password}
    return subprocess.run([FEDCHAIN, *args], capture_output=True, text=True, env=env, timeout=120)


def test_deploy_then_create_task(tmp_path: Path) -> None:
    with (
        AnvilNode(log_path=tmp_path / "anvil.log") as chain,
        KuboDaemon(
            find_ipfs(),
            tmp_path / "ipfs",
            api_port=free_port(),
            swarm_port=free_port(),
            swarm_key=None,
        ) as kubo,
    ):
        dev_key = chain.dev_private_keys(1)[0]
        write_keystore(tmp_path / "deployer.json", bytes.fromhex(dev_key[2:]), "pw", scrypt_n=2**12)
        member = create_identity(tmp_path / "member", "pw", scrypt_n=DEMO_SCRYPT_N)
        w3 = connect(chain.rpc_url)
        fund_account(w3, Account.from_key(dev_key), member.address)
        # Two founders: the member acting here and one that never shows up.
        absent = {"address": Account.create().address, "peer_id": "12D3KooWAbsentFounder"}
        founders = tmp_path / "founders.json"
        founders.write_text(
            json.dumps(
                {"founders": [{"address": member.address, "peer_id": member.peer_id}, absent]}
            )
        )
        done = cli(
            "deploy",
            "--rpc-url",
            chain.rpc_url,
            "--keystore",
            str(tmp_path / "deployer.json"),
            "--founders",
            str(founders),
        )
        assert done.returncode == 0, done.stderr
        contract = done.stdout.strip().splitlines()[-1]
        spec_file = tmp_path / "spec.json"
        spec_file.write_bytes(SPEC.to_bytes())

        def create_task(keystore: Path, *extra: str) -> subprocess.CompletedProcess[str]:
            return cli(
                "create-task", "--rpc-url", chain.rpc_url, "--contract", contract,
                "--keystore", str(keystore), "--ipfs-api", kubo.api_multiaddr,
                "--spec", str(spec_file), "--rounds", "3", "--max-samples", "500", *extra,
            )  # fmt: skip

        member_key = tmp_path / "member" / "eth.json"
        done = create_task(member_key)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == "1"
        client = FederationClient(w3, contract, member.account)
        task = client.task(1)
        # No --quorum: ceil(2n/3) of the 2 members, i.e. both.
        assert (task.quorum, task.num_rounds, task.current_round) == (2, 3, 1)
        assert task.max_samples == 500
        # A quorum of 1 of 2 is no majority: one line naming the fix, exit 2, no task.
        done = create_task(member_key, "--quorum", "1")
        assert done.returncode == 2
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("fedchain: error: --quorum 1 is not a strict majority")
        assert "at least 2" in last and "Traceback" not in done.stderr
        assert client.task_count() == 1
        store = KuboContentStore(kubo.api_multiaddr)
        assert TaskSpec.from_bytes(store.get(client.spec_cid(1), timeout=10)) == SPEC
        store.close()
        # The deployer is not a member: creating a task with its key is refused by name.
        done = create_task(tmp_path / "deployer.json")
        assert done.returncode != 0
        assert "NotMember" in done.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("{", "not valid JSON"),
        ('{"founders": []}', "founders"),
        ('{"founders": [{"address": "0x12", "peer_id": "12D3KooWabc"}]}', "founders.0.address"),
        (
            '{"founders": [{"address": "0x' + "12" * 20 + '", "peer_id": "12D3KooWabc", '
            '"encryption_key": "' + "ab" * 32 + '"}]}',
            "need an audit_key and every founder's encryption_key",
        ),
        (
            '{"founders": [{"address": "0x' + "12" * 20 + '", "peer_id": "12D3KooWabc", '
            '"encryption_key": "' + "00" * 32 + '"}], "audit_key": "' + "cd" * 32 + '"}',
            "is not an X25519 public key",
        ),
    ],
)
def test_bad_founders_file(tmp_path: Path, content: str, needle: str) -> None:
    write_keystore(tmp_path / "k.json", bytes(31) + b"\x01", "pw", scrypt_n=2**12)
    (tmp_path / "f.json").write_text(content)
    done = cli(
        "deploy",
        "--rpc-url",
        "http://127.0.0.1:1",
        "--keystore",
        str(tmp_path / "k.json"),
        "--founders",
        str(tmp_path / "f.json"),
    )
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fedchain: error:") and needle in last


@pytest.mark.parametrize("members", range(1, 40))
def test_default_quorum_is_a_strict_majority(members: int) -> None:
    quorum = default_quorum(members)
    assert members < 2 * quorum and quorum <= members
    assert 3 * quorum >= 2 * members > 3 * (quorum - 1), "not the ceiling of 2n/3"


def test_create_task_help_explains_the_new_options() -> None:
    done = cli("create-task", "--help")
    assert done.returncode == 0
    text = " ".join(word for word in done.stdout.split() if word != "│")  # rich's box edges
    assert "--max-samples" in text and "FedAvg" in text
    assert "start-up" in text and "20 s per peer" in text
