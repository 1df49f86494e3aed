"""The Gossip conformance suite over both transports: real py-libp2p hosts and the memory twin.

The libp2p peers are real hosts in this process (TCP on loopback, Noise, Yamux,
GossipSub); each new one bootstraps to every earlier one, so they form a full
mesh as the memory twin's peers do.  What only one backend has is tested in
``test_lifecycle.py``/``test_processes.py`` (ports, threads, processes) and
``test_memory_gossip.py`` (the twin's hooks).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from peer.gossip.abc import Gossip
from peer.gossip.hook import Validator
from peer.gossip.memory import MemoryGossipNetwork
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from tests.peer.gossip.conformance import GossipConformance

TOPIC = "fedchain/test-conformance"


class _Factory:
    settle = 0.0

    def __init__(self) -> None:
        self.made: list[Gossip] = []

    def _new(
        self, validator: Validator | None, max_message_bytes: int
    ) -> Gossip:  # pragma: no cover - overridden
        raise NotImplementedError

    def __call__(
        self,
        *,
        validator: Validator | None = None,
        max_message_bytes: int = 64 * 1024,
        start: bool = True,
    ) -> Gossip:
        peer = self._new(validator, max_message_bytes)
        self.made.append(peer)
        if start:
            peer.start()
        return peer

    def close_all(self) -> None:
        for peer in reversed(self.made):
            peer.close()


class Libp2pFactory(_Factory):
    settle = 1.0

    def _new(self, validator: Validator | None, max_message_bytes: int) -> Gossip:
        from peer.gossip.libp2p_gossip import Libp2pGossip

        bootstrap = [
            address
            for peer in self.made
            if isinstance(peer, Libp2pGossip) and peer.is_running
            for address in peer.listen_addrs
        ]
        return Libp2pGossip(
            generate_ed25519_seed(),
            topic=TOPIC,
            bootstrap=bootstrap,
            validator=validator,
            max_message_bytes=max_message_bytes,
        )


class MemoryFactory(_Factory):
    def __init__(self) -> None:
        super().__init__()
        self.network = MemoryGossipNetwork(topic=TOPIC)

    def _new(self, validator: Validator | None, max_message_bytes: int) -> Gossip:
        peer_id = peer_id_from_seed(generate_ed25519_seed())
        return self.network.join(peer_id, validator=validator, max_message_bytes=max_message_bytes)


@pytest.fixture(params=["libp2p", "memory"])
def make_peer(request: pytest.FixtureRequest) -> Iterator[_Factory]:
    factory = Libp2pFactory() if request.param == "libp2p" else MemoryFactory()
    try:
        yield factory
    finally:
        factory.close_all()


class TestGossip(GossipConformance):
    """``make_peer`` is parametrized over ``libp2p`` and ``memory``."""
