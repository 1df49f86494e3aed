"""Content-store backends for the tests of one module.

Real Kubo daemons (a private swarm of two) and an in-memory twin network; the
conformance suite and the update-fetcher tests run over both through the
``content_backend`` parameter (``peer_a``, ``peer_b``, ``open_store_a``, ``pins_of``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import pytest

from fedchain.localnet.kubo_daemon import generate_swarm_key
from peer.content.abc import ContentStore
from peer.content.kubo import KuboContentStore
from peer.content.memory import MemoryContentNetwork, MemoryContentStore
from tests.peer.content.kubo_harness import KuboPeer, cli, ipfs_binary, start_peer

BACKENDS = ["kubo", "memory"]


@pytest.fixture(scope="module")
def ipfs_bin() -> Path:
    return ipfs_binary()


@pytest.fixture(scope="module")
def swarm_key() -> bytes:
    return generate_swarm_key()


def _shared_peer(
    ipfs_bin: Path, swarm_key: bytes, factory: pytest.TempPathFactory, name: str
) -> Iterator[KuboPeer]:
    peer = start_peer(ipfs_bin, factory.mktemp("kubo") / name, swarm_key)
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def kubo_a(
    ipfs_bin: Path, swarm_key: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KuboPeer]:
    yield from _shared_peer(ipfs_bin, swarm_key, tmp_path_factory, "a")


@pytest.fixture(scope="module")
def kubo_b(
    ipfs_bin: Path, swarm_key: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KuboPeer]:
    yield from _shared_peer(ipfs_bin, swarm_key, tmp_path_factory, "b")


# -- the in-memory twin ------------------------------------------------------------


@dataclass
class MemoryPeer:
    """A node of a MemoryContentNetwork plus a store open on it (the KuboPeer of the twin)."""

    network: MemoryContentNetwork
    store: MemoryContentStore

    @property
    def address(self) -> str:
        return self.store.address

    def take_down(self) -> None:
        self.network.set_reachable(self.store.name, False)

    def close(self) -> None:
        self.store.close()


@pytest.fixture(scope="module")
def memory_network() -> MemoryContentNetwork:
    return MemoryContentNetwork()


@pytest.fixture(scope="module")
def memory_a(memory_network: MemoryContentNetwork) -> MemoryPeer:
    return MemoryPeer(memory_network, memory_network.store("a"))


@pytest.fixture(scope="module")
def memory_b(memory_network: MemoryContentNetwork) -> MemoryPeer:
    return MemoryPeer(memory_network, memory_network.store("b"))


# -- either backend ------------------------------------------------------------------

StorePeerType = KuboPeer | MemoryPeer


@pytest.fixture(scope="module", params=BACKENDS)
def content_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def peer_a(content_backend: str, request: pytest.FixtureRequest) -> StorePeerType:
    peer: StorePeerType = request.getfixturevalue(f"{content_backend}_a")
    return peer


@pytest.fixture(scope="module")
def peer_b(content_backend: str, request: pytest.FixtureRequest) -> StorePeerType:
    peer: StorePeerType = request.getfixturevalue(f"{content_backend}_b")
    return peer


@pytest.fixture
def open_store_a(peer_a: StorePeerType) -> Callable[[], ContentStore]:
    """A new store on A's backend (a new client of A's daemon, a new handle on node A)."""
    if isinstance(peer_a, KuboPeer):
        api = peer_a.daemon.api_multiaddr
        return lambda: KuboContentStore(api)
    network, name = peer_a.network, peer_a.store.name
    return lambda: network.store(name)


class SparePeer(Protocol):
    """A peer a test owns: it may take its backend down (Kubo daemon stopped, node unreachable)."""

    @property
    def store(self) -> ContentStore: ...

    @property
    def address(self) -> str: ...

    def take_down(self) -> None: ...


@pytest.fixture
def spare_peer(
    content_backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], SparePeer]]:
    """Factory of fresh peers on the current backend, closed at teardown."""
    made: list[KuboPeer | MemoryPeer] = []

    def make() -> SparePeer:
        peer: KuboPeer | MemoryPeer
        if content_backend == "memory":
            network: MemoryContentNetwork = request.getfixturevalue("memory_network")
            peer = MemoryPeer(network, network.store(f"spare-{uuid.uuid4().hex[:12]}"))
        else:
            binary: Path = request.getfixturevalue("ipfs_bin")
            key: bytes = request.getfixturevalue("swarm_key")
            peer = start_peer(binary, tmp_path / f"spare{len(made)}", key)
        made.append(peer)
        return peer

    yield make
    for peer in made:
        peer.close()


@pytest.fixture
def pins_of(content_backend: str, request: pytest.FixtureRequest) -> Callable[[object], str]:
    """Recursive pins of a peer, one text CID per line (``ipfs pin ls --type=recursive``)."""
    if content_backend == "memory":

        def memory_pins(peer: object) -> str:
            assert isinstance(peer, MemoryPeer)
            return "\n".join(sorted(peer.network.pins(peer.store.name)))

        return memory_pins
    binary: Path = request.getfixturevalue("ipfs_bin")

    def kubo_pins(peer: object) -> str:
        assert isinstance(peer, KuboPeer)
        return cli(binary, peer.daemon, "pin", "ls", "--type=recursive", "--quiet")

    return kubo_pins
