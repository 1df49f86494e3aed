"""One conformance suite, four ledgers: Anvil, Ganache, geth and the in-memory twin.

Every ledger test takes the ``chain`` fixture (or ``fed``, built on it), a :class:`Backend`
parametrized over ``anvil``, ``ganache``, ``geth`` and ``memory``: the same test must pass
against the real contract on every real chain and against
:class:`peer.ledger.memory.MemoryChain`.

geth runs in developer mode sealing one block per transaction (``--dev.period 0``) to keep the
suite's run time down; the 1 s block period is exercised by the e2e federation on geth.  geth
cannot move block time, so a test reaching ``time_advance`` on it is skipped at that point
(everything before it has run and passed).  When ``make setup`` could not install geth, the
geth backend is skipped with the reason its path file gives.
What differs between backends lives here only: how a federation is deployed, how a handle for
an account is made, how block time moves forward, and how a block's timestamp is read.

Real chains are started once per session, the memory chain is made once per session with a
manual clock; each test deploys its own federation.  A test that is about JSON-RPC or web3
itself (raw transactions, receipts, code at an address) is marked ``real_chain_only`` with the
reason, and is reported as skipped on the memory backend -- keep that list short.
"""

from __future__ import annotations

import hashlib
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from consensus.merkle import MerkleTree
from consensus.scoring import Score, scores_tree
from fedchain.errors import ToolchainError
from fedchain.localnet.chain_node import CHAINS, AnvilNode, DevChain, GethNode, GethUnavailable
from peer.ledger.abc import FederationLedger
from peer.ledger.artifact import ContractArtifact, shipped_artifact
from peer.ledger.client import FederationClient, connect, deploy
from peer.ledger.memory import MemoryChain

BACKENDS = ["anvil", "ganache", "geth", "memory"]
ACCOUNTS = 10
"""Funded dev accounts per chain: deployer, up to 6 members, outsiders."""
HOUR = 3600
MAX_SAMPLES = 1000
"""Sample cap of the tasks ``Fed.new_task`` creates (members submit 100 + their index)."""


def cid_of(data: bytes, codec: int = 0x55) -> bytes:
    """Binary CIDv1 (raw codec, sha2-256) of ``data``, as Kubo would name it."""
    return bytes([0x01, codec, 0x12, 0x20]) + hashlib.sha256(data).digest()


def real_chain_only(reason: str) -> pytest.MarkDecorator:
    """Mark a test that is about a real chain's JSON-RPC, not about the ledger's rules."""
    return pytest.mark.real_chain_only(reason=reason)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_chain_only(reason): needs a JSON-RPC chain; skipped on the memory twin"
    )


@pytest.fixture(autouse=True)
def _skip_real_chain_only_on_memory(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("real_chain_only")
    callspec = getattr(request.node, "callspec", None)
    if marker is not None and callspec is not None and callspec.params.get("chain") == "memory":
        pytest.skip(f"real chain only: {marker.kwargs['reason']}")


class Backend(ABC):
    """What the suite needs from a ledger backend beyond the ledger interface itself."""

    name: str
    chain_id: int

    @abstractmethod
    def dev_private_keys(self, n: int) -> list[str]:
        """Keys of ``n`` funded accounts (the same dev keys on every backend)."""

    @abstractmethod
    def deploy(
        self,
        deployer: LocalAccount,
        founders: Sequence[str],
        peer_ids: Sequence[str],
        bps: int,
        **keys: Any,
    ) -> FederationLedger:
        """Deploy a federation; return a handle acting as ``deployer``.  ``keys``:
        ``encryption_keys`` and ``audit_key`` as :func:`peer.ledger.client.deploy` takes them."""

    @abstractmethod
    def client(self, address: str, account: LocalAccount) -> FederationLedger:
        """A handle on the federation at ``address`` acting as ``account``."""

    @abstractmethod
    def time_advance(self, seconds: int) -> int:
        """Move block time forward and mine a block; return its timestamp."""

    @abstractmethod
    def block_time(self, block_number: int | None = None) -> int:
        """Timestamp of a block (default: the latest)."""


class RealChain(Backend):
    """Anvil, Ganache or geth, reached over JSON-RPC by :class:`FederationClient`."""

    def __init__(self, node: DevChain, artifact: ContractArtifact) -> None:
        self.node = node
        self.name = node.name
        self.chain_id = node.chain_id
        self.artifact = artifact
        self.w3: Web3 = connect(node.rpc_url)

    def dev_private_keys(self, n: int) -> list[str]:
        return self.node.dev_private_keys(n)

    def deploy(
        self,
        deployer: LocalAccount,
        founders: Sequence[str],
        peer_ids: Sequence[str],
        bps: int,
        **keys: Any,
    ) -> FederationClient:
        return deploy(self.w3, deployer, founders, peer_ids, bps, artifact=self.artifact, **keys)

    def client(self, address: str, account: LocalAccount) -> FederationClient:
        return FederationClient(self.w3, address, account, artifact=self.artifact)

    def time_advance(self, seconds: int) -> int:
        try:
            return self.node.time_advance(seconds)
        except ToolchainError as exc:
            pytest.skip(f"{self.name} cannot move block time: {exc}")

    def block_time(self, block_number: int | None = None) -> int:
        tag = "latest" if block_number is None else hex(block_number)
        return int(self.rpc("eth_getBlockByNumber", [tag, False])["timestamp"], 16)

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        return self.node.rpc(method, params)


class ManualClock:
    """Block time for the memory chain: still until the suite moves it."""

    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class MemoryBackend(Backend):
    """:class:`MemoryChain` on a manual clock, with Anvil's dev keys."""

    name = "memory"

    def __init__(self) -> None:
        self.clock = ManualClock(int(time.time()))
        self.memory = MemoryChain(self.clock)
        self.chain_id = self.memory.chain_id
        self._keys = AnvilNode(accounts=ACCOUNTS)  # never started: only its key derivation

    def dev_private_keys(self, n: int) -> list[str]:
        return self._keys.dev_private_keys(n)

    def deploy(
        self,
        deployer: LocalAccount,
        founders: Sequence[str],
        peer_ids: Sequence[str],
        bps: int,
        **keys: Any,
    ) -> FederationLedger:
        return self.memory.deploy(deployer, founders, peer_ids, bps, **keys)

    def client(self, address: str, account: LocalAccount) -> FederationLedger:
        return self.memory.client(account, address)

    def time_advance(self, seconds: int) -> int:
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds} s")
        self.clock.advance(seconds)
        return self.memory.mine()

    def block_time(self, block_number: int | None = None) -> int:
        return self.memory.block_timestamp(block_number)


@pytest.fixture(scope="session")
def artifact() -> ContractArtifact:
    return shipped_artifact()


@pytest.fixture(scope="session", params=BACKENDS)
def chain(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "memory":
        yield MemoryBackend()
        return
    artifact = request.getfixturevalue("artifact")
    log = tmp_path_factory.mktemp("chains") / f"{request.param}.log"
    node: DevChain
    if request.param == "geth":
        try:
            node = GethNode(accounts=ACCOUNTS, log_path=log, block_period=0)
            node.start()
        except GethUnavailable as exc:
            pytest.skip(str(exc))
    else:
        node = CHAINS[request.param](accounts=ACCOUNTS, log_path=log)
    with node:
        yield RealChain(node, artifact)


@dataclass
class Fed:
    """A deployed federation: clients for each founder, the deployer and outsiders."""

    chain: Backend
    deployer: FederationLedger
    members: list[FederationLedger]
    outsiders: list[LocalAccount]
    peer_ids: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.deployer.address

    def client(self, account: LocalAccount) -> FederationLedger:
        return self.chain.client(self.address, account)

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


def make_fed(chain: Backend, n_members: int = 3) -> Fed:
    keys = chain.dev_private_keys(ACCOUNTS)
    accounts = [Account.from_key(k) for k in keys]
    deployer_acct, member_accts, outsiders = (
        accounts[0],
        accounts[1 : 1 + n_members],
        accounts[1 + n_members :],
    )
    peer_ids = [f"12D3KooWTestPeer{i}" for i in range(n_members)]
    deployer = chain.deploy(deployer_acct, [a.address for a in member_accts], peer_ids, 5001)
    members = [chain.client(deployer.address, a) for a in member_accts]
    return Fed(chain, deployer, members, outsiders, peer_ids)


@pytest.fixture
def fed(chain: Backend) -> Fed:
    return make_fed(chain)
