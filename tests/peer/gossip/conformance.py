"""Behaviour every Gossip must show, whatever the transport.

A backend's test class inherits ``GossipConformance`` and provides the fixture
``make_peer``: a :class:`PeerFactory` whose call returns a new peer on one
shared topic, connected to every peer the factory made before it (once
started), and which closes them all at teardown.  ``settle`` is how long to
wait before concluding that nothing more will arrive.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import pytest

from fedchain.errors import ProtocolError, ServiceUnavailableError
from peer.announcements import RejectedAnnouncement, RejectReason
from peer.gossip.abc import Gossip, GossipMessage
from peer.gossip.hook import Validator

ARRIVAL_TIMEOUT = 20.0
CONNECT_TIMEOUT = 20.0


class PeerFactory(Protocol):
    settle: float

    def __call__(
        self,
        *,
        validator: Validator | None = None,
        max_message_bytes: int = 64 * 1024,
        start: bool = True,
    ) -> Gossip: ...


def wait_connected(*peers: Gossip, timeout: float = CONNECT_TIMEOUT) -> None:
    """Wait until each peer lists every other one as a connected topic peer."""
    deadline = time.monotonic() + timeout
    for peer in peers:
        others = sorted(p.peer_id for p in peers if p is not peer)
        while peer.connected_peers() != others:
            if time.monotonic() > deadline:
                pytest.fail(f"{peer.peer_id} sees {peer.connected_peers()}, expected {others}")
            time.sleep(0.05)


def receive_all(peer: Gossip, count: int) -> list[GossipMessage]:
    received = []
    for _ in range(count):
        message = peer.receive(timeout=ARRIVAL_TIMEOUT)
        assert message is not None, f"only {len(received)} of {count} messages arrived"
        received.append(message)
    return received


def receive_set(
    peer: Gossip, expected: set[tuple[str, bytes]], *, quiet: float
) -> set[tuple[str, bytes]]:
    """(sender, data) of what arrives until ``expected`` is complete, then for ``quiet`` s more."""
    got: set[tuple[str, bytes]] = set()
    deadline = time.monotonic() + ARRIVAL_TIMEOUT
    while not expected <= got and time.monotonic() < deadline:
        message = peer.receive(timeout=max(deadline - time.monotonic(), 0.01))
        if message is not None:
            got.add((message.sender_peer_id, message.data))
    while (message := peer.receive(timeout=quiet)) is not None:
        got.add((message.sender_peer_id, message.data))
    return got


def judge(sender_peer_id: str, data: bytes) -> object:
    """Refuses b"no" by returning False, b"boom" and b"stranger" by raising; else a verdict."""
    if data == b"boom":
        raise ValueError("cannot read this")
    if data == b"stranger":
        raise RejectedAnnouncement(RejectReason.NON_MEMBER, "not one of us")
    if data == b"no":
        return False
    return {"from": sender_peer_id, "length": len(data)}


class GossipConformance:
    def test_unstarted_peer_refuses_work_but_closes_quietly(self, make_peer: PeerFactory):
        peer = make_peer(max_message_bytes=10, start=False)
        with pytest.raises(ProtocolError, match="11 bytes exceeds max_message_bytes=10"):
            peer.publish(b"x" * 11)
        with pytest.raises(ServiceUnavailableError, match="start"):
            peer.publish(b"ok")
        with pytest.raises(ServiceUnavailableError, match="start"):
            _ = peer.listen_addrs
        assert peer.receive(timeout=0) is None
        assert peer.connected_peers() == []
        peer.close()
        peer.close()
        with pytest.raises(ServiceUnavailableError, match="closed"):
            peer.start()

    def test_two_peers_exchange_messages_signed_by_the_publisher(self, make_peer: PeerFactory):
        first, second = make_peer(), make_peer()
        wait_connected(first, second)
        second.publish(b"ping")
        first.publish(b"pong")
        [ping] = receive_all(first, 1)
        [pong] = receive_all(second, 1)
        assert (ping.data, ping.sender_peer_id, ping.validated) == (b"ping", second.peer_id, None)
        assert (pong.data, pong.sender_peer_id) == (b"pong", first.peer_id)
        assert ping.topic == pong.topic and ping.topic
        assert first.receive(timeout=make_peer.settle) is None, "own messages are not delivered"
        assert second.receive(timeout=make_peer.settle) is None
        assert (first.stats().accepted, second.stats().accepted) == (1, 1)

    def test_every_peer_of_three_receives_every_other_peers_messages(self, make_peer: PeerFactory):
        peers = [make_peer(), make_peer(), make_peer()]
        wait_connected(*peers)
        for index, peer in enumerate(peers):
            for n in range(3):
                peer.publish(f"{index}:{n}".encode())
        for index, peer in enumerate(peers):
            expected = {
                (other.peer_id, f"{j}:{n}".encode())
                for j, other in enumerate(peers)
                if j != index
                for n in range(3)
            }
            got = receive_set(peer, expected, quiet=make_peer.settle)
            assert got == expected
            # py-libp2p 0.8.1 now and then delivers a message twice (it arrived by two
            # paths at once, both past the seen-cache before either was validated), so
            # receivers must tolerate duplicates; the count is at least one per message.
            assert peer.stats().accepted >= 6 and peer.stats().rejected_total == 0

    def test_refused_messages_are_not_delivered_and_are_counted_by_reason(
        self, make_peer: PeerFactory
    ):
        receiver = make_peer(validator=judge)
        sender = make_peer(validator=judge)
        wait_connected(receiver, sender)
        # The sender's own validator does not judge its own messages: all four go out.
        for data in (b"no", b"boom", b"stranger", b"fine"):
            sender.publish(data)
        [received] = receive_all(receiver, 1)
        assert received.data == b"fine"
        assert received.validated == {"from": sender.peer_id, "length": 4}
        assert receiver.receive(timeout=make_peer.settle) is None
        stats = receiver.stats()
        assert (stats.accepted, dict(stats.rejected)) == (
            1,
            {"refused": 1, "ValueError": 1, "non-member": 1},
        )
        assert sender.stats().rejected_total == 0 and sender.stats().accepted == 0

    def test_a_receiver_refuses_messages_over_its_own_limit(self, make_peer: PeerFactory):
        receiver = make_peer(max_message_bytes=10)
        sender = make_peer(max_message_bytes=1000)
        wait_connected(receiver, sender)
        sender.publish(b"x" * 11)
        sender.publish(b"small")
        [received] = receive_all(receiver, 1)
        assert received.data == b"small"
        assert dict(receiver.stats().rejected) == {"too large": 1}
        with pytest.raises(ProtocolError, match="1001 bytes exceeds max_message_bytes=1000"):
            sender.publish(b"x" * 1001)

    def test_listen_addrs_and_connected_peers(self, make_peer: PeerFactory):
        first = make_peer()
        assert first.connected_peers() == []
        [address] = first.listen_addrs
        assert address.endswith(f"/p2p/{first.peer_id}")
        second, third = make_peer(), make_peer()
        wait_connected(first, second, third)
        assert len({first.peer_id, second.peer_id, third.peer_id}) == 3
        third.close()
        assert third.connected_peers() == []
        # Not checked: that the others stop listing ``third``.  py-libp2p 0.8.1 hosts
        # still listed a closed peer 20 s later; the memory twin drops it at once.

    def test_close_is_idempotent_and_final(self, make_peer: PeerFactory):
        first, second = make_peer(), make_peer()
        wait_connected(first, second)
        first.close()
        first.close()
        with pytest.raises(ServiceUnavailableError):
            first.publish(b"after close")
        assert first.receive(timeout=0.1) is None
        assert first.connected_peers() == []
        with pytest.raises(ServiceUnavailableError, match="closed"):
            first.start()
        second.close()

    def test_close_from_another_thread_while_receiving(self, make_peer: PeerFactory):
        peer = make_peer()
        results: list[object] = []
        receiver = threading.Thread(target=lambda: results.append(peer.receive(timeout=2)))
        receiver.start()
        closer = threading.Thread(target=peer.close)
        closer.start()
        peer.close()
        closer.join(20)
        receiver.join(20)
        assert not closer.is_alive() and not receiver.is_alive()
        assert results == [None]
