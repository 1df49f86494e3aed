"""Libp2pGossip's ``validator`` hook, two hosts in this process: what it refuses never arrives."""

from __future__ import annotations

import threading

from peer.gossip.libp2p_gossip import Libp2pGossip
from peer.gossip.peer_id import generate_ed25519_seed
from tests.peer.gossip.test_lifecycle import TOPIC, wait_for_peers


def judge(sender_peer_id: str, data: bytes) -> object:
    """Refuses b"no" by returning False and b"boom" by raising; returns a verdict otherwise."""
    if data == b"boom":
        raise ValueError("cannot read this")
    if data == b"no":
        return False
    return {"from": sender_peer_id, "length": len(data)}


def test_refused_messages_are_not_delivered_and_are_counted_by_reason() -> None:
    threads_before = set(threading.enumerate())
    receiver = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC, validator=judge)
    sender = Libp2pGossip(generate_ed25519_seed(), topic=TOPIC, validator=judge)
    try:
        receiver.start()
        sender = Libp2pGossip(
            generate_ed25519_seed(), topic=TOPIC, bootstrap=receiver.listen_addrs, validator=judge
        )
        sender.start()
        assert wait_for_peers(receiver, 1) == [sender.peer_id]
        assert wait_for_peers(sender, 1) == [receiver.peer_id]
        # The sender's own validator does not judge its own messages: all three go out.
        for data in (b"no", b"boom", b"fine"):
            sender.publish(data)
        received = receiver.receive(timeout=30)
        assert received is not None
        assert received.data == b"fine"
        assert received.validated == {"from": sender.peer_id, "length": 4}
        assert receiver.receive(timeout=1) is None
        stats = receiver.stats()
        assert (stats.accepted, dict(stats.rejected)) == (1, {"refused": 1, "ValueError": 1})
        assert sender.stats().rejected_total == 0
    finally:
        sender.close()
        receiver.close()
    assert set(threading.enumerate()) == threads_before, "validator threads must stop on close"
