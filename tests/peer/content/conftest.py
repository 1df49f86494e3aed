"""Real Kubo daemons shared by the content tests of one module (a private swarm of two)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.services.kubo_daemon import generate_swarm_key
from tests.peer.content.kubo_harness import KuboPeer, ipfs_binary, start_peer


@pytest.fixture(scope="module")
def ipfs_bin() -> Path:
    return ipfs_binary()


@pytest.fixture(scope="module")
def swarm_key() -> bytes:
    return generate_swarm_key()


@pytest.fixture(scope="module")
def kubo_a(
    ipfs_bin: Path, swarm_key: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KuboPeer]:
    peer = start_peer(ipfs_bin, tmp_path_factory.mktemp("kubo") / "a", swarm_key)
    yield peer
    peer.close()


@pytest.fixture(scope="module")
def kubo_b(
    ipfs_bin: Path, swarm_key: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KuboPeer]:
    peer = start_peer(ipfs_bin, tmp_path_factory.mktemp("kubo") / "b", swarm_key)
    yield peer
    peer.close()
