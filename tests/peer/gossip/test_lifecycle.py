"""Libp2pGossip in this process: argument checks, start/close, threads and ports."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from fedchain.errors import ConfigError, ProtocolError, ServiceUnavailableError
from peer.gossip.libp2p_gossip import Libp2pGossip
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed

TOPIC = "fedchain/test-lifecycle"


def port_of(addr: str) -> int:
    return int(addr.split("/tcp/")[1].split("/")[0])


def wait_for_peers(gossip: Libp2pGossip, count: int, timeout: float = 20) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(peers := gossip.connected_peers()) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return peers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"private_key": b"short"}, "32-byte Ed25519 seed"),
        ({"topic": ""}, "topic"),
        ({"max_message_bytes": 0}, "max_message_bytes"),
        ({"max_message_bytes": 2 * 1024 * 1024}, "max_message_bytes"),
        ({"listen_port": 70000}, "listen_port"),
        ({"stats_log_interval": 0}, "stats_log_interval"),
        ({"listen_host": "not-an-ip"}, "listen_host"),
        ({"bootstrap": ["/ip4/127.0.0.1/tcp/4001"]}, "/p2p/"),
        ({"bootstrap": ["nonsense"]}, "nonsense"),
    ],
)
def test_bad_arguments_are_config_errors(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"private_key": generate_ed25519_seed(), "topic": TOPIC}
    arguments.update(kwargs)
    with pytest.raises(ConfigError, match=message):
        Libp2pGossip(**arguments)  # type: ignore[arg-type]


def test_unstarted_gossip_refuses_work_but_closes_quietly() -> None:
    seed = generate_ed25519_seed()
    gossip = Libp2pGossip(seed, topic=TOPIC, max_message_bytes=10)
    assert gossip.peer_id == peer_id_from_seed(seed)
    with pytest.raises(ProtocolError, match="11 bytes exceeds max_message_bytes=10"):
        gossip.publish(b"x" * 11)
    with pytest.raises(ServiceUnavailableError, match="start"):
        gossip.publish(b"ok")
    with pytest.raises(ServiceUnavailableError, match="start"):
        _ = gossip.listen_addrs
    assert gossip.receive(timeout=0) is None
    assert gossip.connected_peers() == []
    gossip.close()
    gossip.close()
    with pytest.raises(ServiceUnavailableError, match="closed"):
        gossip.start()


def test_close_stops_every_thread_and_frees_the_port() -> None:
    threads_before = set(threading.enumerate())
    first_seed = generate_ed25519_seed()
    first = Libp2pGossip(first_seed, topic=TOPIC, max_message_bytes=1024)
    second = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC)
    try:
        first.start()
        [first_addr] = first.listen_addrs
        port = port_of(first_addr)
        assert port > 0, "port 0 must be replaced by the real port"
        assert first_addr == f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id_from_seed(first_seed)}"
        second = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC, bootstrap=[first_addr])
        second.start()
        assert wait_for_peers(first, 1) == [second.peer_id]
        assert wait_for_peers(second, 1) == [first.peer_id]
        with pytest.raises(ProtocolError):
            first.publish(b"x" * 1025)
        second.publish(b"ping")
        first.publish(b"pong")
        received = first.receive(timeout=20)
        assert received is not None
        assert (received.data, received.sender_peer_id) == (b"ping", second.peer_id)
        reply = second.receive(timeout=20)
        assert reply is not None and reply.data == b"pong"
        assert first.receive(timeout=0.5) is None, "own messages are not delivered back"
    finally:
        second.close()
        first.close()
    first.close()  # idempotent

    assert set(threading.enumerate()) == threads_before
    with pytest.raises(ServiceUnavailableError):
        first.publish(b"after close")
    assert first.receive(timeout=0.1) is None
    assert first.connected_peers() == []

    with socket.socket() as probe:  # nothing listens on the port any more
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
        probe.listen()
    restarted = Libp2pGossip(first_seed, topic=TOPIC, listen_port=port)
    try:
        restarted.start()
        assert restarted.listen_addrs == [first_addr]
    finally:
        restarted.close()
    assert set(threading.enumerate()) == threads_before


def test_port_held_by_another_node_is_refused() -> None:
    threads_before = set(threading.enumerate())
    holder = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC)
    holder.start()
    try:
        port = port_of(holder.listen_addrs[0])
        intruder = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC, listen_port=port)
        with pytest.raises(ServiceUnavailableError, match=f"127.0.0.1:{port}"):
            intruder.start()
        intruder.close()
    finally:
        holder.close()
    assert set(threading.enumerate()) == threads_before


def test_close_from_another_thread_while_receiving() -> None:
    gossip = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC)
    gossip.start()
    results: list[object] = []
    receiver = threading.Thread(target=lambda: results.append(gossip.receive(timeout=2)))
    receiver.start()
    closer = threading.Thread(target=gossip.close)
    closer.start()
    gossip.close()
    closer.join(20)
    receiver.join(20)
    assert not closer.is_alive() and not receiver.is_alive()
    assert results == [None]
