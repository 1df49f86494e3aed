"""What only the memory gossip twin has: its test hooks, determinism and its clock.

Everything a Gossip must do is checked over libp2p and the twin alike in
``test_conformance.py``.
"""

from __future__ import annotations

import threading

import pytest
from eth_account import Account

from fedchain.errors import ConfigError, ServiceUnavailableError
from peer.announcements import Domain, sign_update
from peer.gossip.memory import MemoryGossip, MemoryGossipNetwork
from peer.gossip.validation import AnnouncementValidator

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def started(network: MemoryGossipNetwork, *names: str, **kwargs: object) -> list[MemoryGossip]:
    peers = [network.join(name, **kwargs) for name in names]  # type: ignore[arg-type]
    for peer in peers:
        peer.start()
    return peers


def drain(peer: MemoryGossip) -> list[bytes]:
    out = []
    while (message := peer.receive(timeout=0)) is not None:
        out.append(message.data)
    return out


def test_drop_all_loses_everything_until_turned_off() -> None:
    network = MemoryGossipNetwork()
    a, b, c = started(network, "a", "b", "c")
    network.drop_all()
    a.publish(b"lost")
    assert drain(b) == drain(c) == [] and network.lost == 2
    assert b.stats().accepted == 0, "a message lost in transit is not a rejection"
    network.drop_all(False)
    a.publish(b"kept")
    assert drain(b) == drain(c) == [b"kept"]


def test_random_drops_are_reproducible_from_the_seed() -> None:
    def run(seed: int) -> tuple[list[bytes], list[bytes]]:
        network = MemoryGossipNetwork()
        a, b, c = started(network, "a", "b", "c")
        network.drop_randomly(0.5, seed=seed)
        for n in range(200):
            a.publish(str(n).encode())
        return drain(b), drain(c)

    first, again, other = run(7), run(7), run(8)
    assert first == again and first != other
    assert 60 < len(first[0]) < 140 and 60 < len(first[1]) < 140
    with pytest.raises(ConfigError):
        MemoryGossipNetwork().drop_randomly(1.5)


def test_a_partitioned_peer_neither_sends_nor_receives_until_healed() -> None:
    network = MemoryGossipNetwork()
    a, b, c = started(network, "a", "b", "c")
    network.partition("c")
    assert (a.connected_peers(), c.connected_peers()) == (["b"], [])
    a.publish(b"to b only")
    c.publish(b"into the void")
    assert (drain(b), drain(c), drain(a)) == ([b"to b only"], [], [])
    network.heal()
    assert c.connected_peers() == ["a", "b"]
    c.publish(b"back")
    assert drain(a) == drain(b) == [b"back"]


def test_delivery_order_is_the_publish_order() -> None:
    network = MemoryGossipNetwork()
    a, b, c = started(network, "a", "b", "c")
    for n in range(5):
        a.publish(b"a%d" % n)
        b.publish(b"b%d" % n)
    assert drain(c) == [x for n in range(5) for x in (b"a%d" % n, b"b%d" % n)]


def test_a_full_inbox_drops_and_counts() -> None:
    network = MemoryGossipNetwork()
    a = started(network, "a")[0]
    [b] = started(network, "b", inbox_capacity=3)
    for n in range(5):
        a.publish(b"%d" % n)
    assert drain(b) == [b"0", b"1", b"2"]
    assert (b.stats().accepted, b.stats().inbox_dropped) == (5, 2)


def test_without_wall_clock_receive_never_waits_and_with_it_a_thread_is_woken() -> None:
    virtual = MemoryGossipNetwork(wall_clock=False)
    [peer] = started(virtual, "a")
    assert peer.receive(timeout=3600) is None

    network = MemoryGossipNetwork()
    a, b = started(network, "a", "b")
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(b.receive(timeout=30)))
    waiter.start()
    threading.Timer(0.1, a.publish, args=(b"wake up",)).start()
    waiter.join(10)
    assert not waiter.is_alive()
    [message] = got
    assert getattr(message, "data", None) == b"wake up"


def test_peer_ids_are_unique_while_joined_and_free_again_after_close() -> None:
    network = MemoryGossipNetwork()
    [a] = started(network, "a")
    with pytest.raises(ConfigError, match="already joined"):
        network.join("a")
    a.close()
    again = network.join("a")
    again.start()
    assert network.running_peers() == ["a"]
    with pytest.raises(ServiceUnavailableError, match="already started"):
        again.start()
    for bad in ("", "x/y"):
        with pytest.raises(ConfigError):
            network.join(bad)
    with pytest.raises(ConfigError, match="max_message_bytes"):
        network.join("b", max_message_bytes=2_000_000)


def test_the_announcement_validator_stops_forgeries_before_delivery() -> None:
    domain = Domain(chain_id=31337, contract="0x" + "11" * 20)
    member, outsider = Account.create(), Account.create()

    class Table:
        def is_member(self, address: str) -> bool:
            return address == member.address

        def peer_id_of(self, address: str) -> str:
            return "member-peer" if address == member.address else ""

        def block_number(self) -> int:
            return 1

    network = MemoryGossipNetwork()
    validator = AnnouncementValidator(domain, 1, Table())
    [receiver] = started(network, "receiver", validator=validator)
    [sender] = started(network, "member-peer")

    def announcement(account: object) -> bytes:
        signed = sign_update(account, domain, task_id=1, round_no=1, cid=CID, num_samples=3)  # type: ignore[arg-type]
        return signed.to_bytes()

    network.inject("impostor-peer", announcement(member))
    network.inject("member-peer", announcement(outsider))
    network.inject("member-peer", b"{not json")
    sender.publish(announcement(member))
    message = receiver.receive(timeout=0)
    assert message is not None and message.sender_peer_id == "member-peer"
    assert getattr(message.validated, "member", None) == member.address
    assert receiver.receive(timeout=0) is None
    assert dict(receiver.stats().rejected) == {
        "wrong peer ID": 1,
        "non-member": 1,
        "malformed": 1,
    }


def test_a_closed_peer_leaves_the_others_lists_at_once() -> None:
    network = MemoryGossipNetwork()
    a, b, c = started(network, "a", "b", "c")
    c.close()
    assert a.connected_peers() == ["b"] and b.connected_peers() == ["a"]
    a.publish(b"after c left")
    assert drain(b) == [b"after c left"] and drain(c) == []


def test_random_duplicates_are_reproducible_and_judged_again() -> None:
    def run(seed: int) -> list[bytes]:
        network = MemoryGossipNetwork()
        a, b = started(network, "a", "b")
        network.duplicate_randomly(0.3, seed=seed)
        for n in range(50):
            a.publish(b"%d" % n)
        got = drain(b)
        assert b.stats().accepted == len(got)
        return got

    first = run(1)
    assert first == run(1) and 55 < len(first) < 80
    assert sorted(set(first)) == sorted(b"%d" % n for n in range(50))


def test_a_hundred_peers_in_one_process() -> None:
    network = MemoryGossipNetwork(wall_clock=False)
    peers = started(network, *(f"p{i:03d}" for i in range(100)))
    for peer in peers:
        peer.publish(peer.peer_id.encode())
    for peer in peers:
        got = drain(peer)
        assert len(got) == 99 and peer.peer_id.encode() not in got
        assert got == sorted(got), "deliveries follow the publish order"
