"""A real chain per backend, and a fresh federation per test on it.

Every ledger test runs against Anvil and Ganache (the ``chain`` fixture is
parametrized), so the client and contract behave the same on both.  Chains are
started once per session; each test deploys its own contract, and tests that
need time to pass move the chain's clock forward.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from consensus.merkle import MerkleTree
from consensus.scoring import Score, scores_tree
from fedchain.localnet.chain_node import AnvilNode, DevChain, GanacheNode
from peer.ledger.artifact import ContractArtifact, shipped_artifact
from peer.ledger.client import FederationClient, connect, deploy

ACCOUNTS = 10
"""Funded dev accounts per chain: deployer, up to 6 members, outsiders."""
HOUR = 3600
MAX_SAMPLES = 1000
"""Sample cap of the tasks ``Fed.new_task`` creates (members submit 100 + their index)."""


def cid_of(data: bytes, codec: int = 0x55) -> bytes:
    """Binary CIDv1 (raw codec, sha2-256) of ``data``, as Kubo would name it."""
    return bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()


@pytest.fixture(scope="session")
def artifact() -> ContractArtifact:
    return shipped_artifact()


@pytest.fixture(scope="session", params=["anvil", "ganache"])
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DevChain]:
    cls = AnvilNode if request.param == "anvil" else GanacheNode
    log = tmp_path_factory.mktemp("chains") / f"{request.param}.log"
    with cls(accounts=ACCOUNTS, log_path=log) as node:
        yield node


@pytest.fixture(scope="session")
def w3(chain: DevChain) -> Web3:
    return connect(chain.rpc_url)


@dataclass
class Fed:
    """A deployed federation: clients for each founder, the deployer and outsiders."""

    chain: DevChain
    w3: Web3
    deployer: FederationClient
    members: list[FederationClient]
    outsiders: list[LocalAccount]
    artifact: ContractArtifact
    peer_ids: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.deployer.address

    def client(self, account: LocalAccount) -> FederationClient:
        return FederationClient(self.w3, self.address, account, artifact=self.artifact)

    def new_task(
        self,
        *,
        quorum: int | None = None,
        round_duration: int = HOUR,
        attest_duration: int = HOUR,
        rounds: int = 3,
        by: int = 0,
        max_samples: int = MAX_SAMPLES,
    ) -> int:
        return self.members[by].create_task(
            cid_of(b"spec"),
            cid_of(b"initial model"),
            quorum or len(self.members),
            round_duration,
            attest_duration,
            rounds,
            max_samples,
        )

    def update_cid(self, task: int, round_no: int, i: int) -> bytes:
        return cid_of(f"update {task}/{round_no}/{i}".encode())

    def aggregate_cid(self, task: int, round_no: int, variant: str = "") -> bytes:
        return cid_of(f"aggregate {task}/{round_no}{variant}".encode())

    def tree(self, task: int, round_no: int, who: Sequence[int], samples: int = 100) -> MerkleTree:
        scores = [Score(self.members[i].account.address, samples + i) for i in who]
        return scores_tree(task, round_no, scores)

    def submit(self, task: int, round_no: int, who: Sequence[int]) -> None:
        for i in who:
            self.members[i].submit_update(
                task, round_no, self.update_cid(task, round_no, i), 100 + i
            )

    def attest(
        self, task: int, round_no: int, who: Sequence[int], contributors: Sequence[int]
    ) -> None:
        root = self.tree(task, round_no, contributors).root
        for i in who:
            self.members[i].attest_aggregate(
                task, round_no, self.aggregate_cid(task, round_no), root
            )

    def run_round(self, task: int, round_no: int, who: Sequence[int] | None = None) -> None:
        who = list(range(len(self.members))) if who is None else who
        self.submit(task, round_no, who)
        self.attest(task, round_no, who, who)


def make_fed(chain: DevChain, w3: Web3, artifact: ContractArtifact, n_members: int = 3) -> Fed:
    keys = chain.dev_private_keys(ACCOUNTS)
    accounts = [Account.from_key(k) for k in keys]
    deployer_acct, member_accts, outsiders = (
        accounts[0],
        accounts[1 : 1 + n_members],
        accounts[1 + n_members :],
    )
    peer_ids = [f"12D3KooWTestPeer{i}" for i in range(n_members)]
    deployer = deploy(
        w3, deployer_acct, [a.address for a in member_accts], peer_ids, 5001, artifact=artifact
    )
    members = [FederationClient(w3, deployer.address, a, artifact=artifact) for a in member_accts]
    return Fed(chain, w3, deployer, members, outsiders, artifact, peer_ids)


@pytest.fixture
def fed(chain: DevChain, w3: Web3, artifact: ContractArtifact) -> Fed:
    return make_fed(chain, w3, artifact)
