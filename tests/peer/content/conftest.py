"""Real Kubo daemons shared by the content tests of one module (a private swarm of two)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fedchain.localnet.kubo_daemon import generate_swarm_key
from tests.peer.content.kubo_harness import KuboPeer, ipfs_binary, start_peer


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
