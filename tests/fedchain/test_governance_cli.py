"""`fedchain propose` / `fedchain approve` against a real Anvil: admitting a member by vote."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_account import Account

from fedchain.governance import approvals_needed, describe
from fedchain.localnet.chain_node import AnvilNode
from fedchain.localnet.devnet import DEMO_SCRYPT_N, fund_account
from peer.identity import create_identity
from peer.ledger.client import FederationClient, connect, deploy
from peer.ledger.types import ProposalInfo, ProposalKind
from tests.fedchain.test_consortium_cli import cli

NEWCOMER_PEER = "12D3KooWNewcomerPeerIdForTheGovernanceTest"


def _info(**changes: object) -> ProposalInfo:
    base: dict[str, object] = {
        "proposal_id": 4,
        "kind": ProposalKind.ADMIT,
        "account": "0x" + "ab" * 20,
        "peer_id": NEWCOMER_PEER,
        "metadata_digest": bytes(32),
        "proposer": "0x" + "cd" * 20,
        "approvals": 1,
        "member_count_at_proposal": 3,
        "expires_at": 1_800_000_000,
        "executed": False,
    }
    return ProposalInfo(**{**base, **changes})  # type: ignore[arg-type]


def test_the_threshold_is_counted_like_the_contract() -> None:
    assert approvals_needed(_info(member_count_at_proposal=2), 5001) == 2
    assert approvals_needed(_info(member_count_at_proposal=3), 5001) == 2
    assert approvals_needed(_info(member_count_at_proposal=4), 5000) == 2
    line = describe(_info(), 5001)
    assert line.startswith(f"proposal 4: admit 0x{'ab' * 20} (peer {NEWCOMER_PEER}): 1 of 2")
    assert "`fedchain approve 4` before 2027-01-15 08:00 UTC" in line
    assert describe(_info(approvals=2, executed=True), 5001).endswith("2 of 2 approvals; executed")


@contextmanager
def two_members(tmp_path: Path, **keys: Any) -> Iterator[tuple[AnvilNode, FederationClient]]:
    """Anvil and a federation of members a and b (keystores in tmp_path/a, tmp_path/b)."""
    with AnvilNode(log_path=tmp_path / "anvil.log") as chain:
        w3 = connect(chain.rpc_url)
        dev = Account.from_key(chain.dev_private_keys(1)[0])
        a, b = (create_identity(tmp_path / n, "pw", scrypt_n=DEMO_SCRYPT_N) for n in "ab")
        for member in (a, b):
            fund_account(w3, dev, member.address)
        yield chain, deploy(w3, dev, [a.address, b.address], [a.peer_id, b.peer_id], 5001, **keys)


def test_a_newcomer_is_admitted_by_proposal_and_approval(tmp_path: Path) -> None:
    with two_members(tmp_path) as (chain, fed):
        newcomer = Account.create().address
        common = ("--rpc-url", chain.rpc_url, "--contract", fed.address)

        missing = cli("propose", "admit", "--account", newcomer, *common, "--keystore",
                      str(tmp_path / "a" / "eth.json"))  # fmt: skip
        assert missing.returncode != 0
        assert missing.stderr.strip().splitlines()[-1] == (
            "fedchain: error: --peer-id is required to admit: the newcomer's libp2p peer ID"
        )
        done = cli("propose", "admit", "--account", newcomer, "--peer-id", NEWCOMER_PEER,
                   *common, "--keystore", str(tmp_path / "a" / "eth.json"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"proposal 1: admit {newcomer} (peer {NEWCOMER_PEER}): ")
        assert "1 of 2 approvals" in done.stdout and not fed.is_member(newcomer)

        done = cli("approve", "1", *common, "--keystore", str(tmp_path / "b" / "eth.json"))
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().endswith("2 of 2 approvals; executed")
        assert fed.is_member(newcomer) and fed.peer_id_of(newcomer) == NEWCOMER_PEER

        again = cli("approve", "1", *common, "--keystore", str(tmp_path / "a" / "eth.json"))
        assert again.returncode != 0 and "Traceback" not in again.stderr


def test_an_admission_to_a_keyed_federation_carries_the_encryption_key(tmp_path: Path) -> None:
    keys = {"encryption_keys": [b"\x01" * 32, b"\x02" * 32], "audit_key": b"\x0a" * 32}
    with two_members(tmp_path, **keys) as (chain, fed):
        newcomer = Account.create().address
        common = ("admit", "--account", newcomer, "--peer-id", NEWCOMER_PEER, "--rpc-url",
                  chain.rpc_url, "--contract", fed.address, "--keystore",
                  str(tmp_path / "a" / "eth.json"))  # fmt: skip
        keyless = cli("propose", *common)
        assert keyless.returncode != 0 and "ZeroEncryptionKey" in keyless.stderr
        assert "fedchain init" in keyless.stderr and "Traceback" not in keyless.stderr
        bad = cli("propose", *common, "--encryption-key", "0x1234")
        assert bad.returncode != 0
        assert "--encryption-key '0x1234' is not an X25519 public key" in bad.stderr
        done = cli("propose", *common, "--encryption-key", "33" * 32)
        assert done.returncode == 0, done.stderr
        assert fed.proposal(1).encryption_key == b"\x33" * 32
