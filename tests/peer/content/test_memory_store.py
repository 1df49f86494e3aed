"""What only the memory twin has: its test hooks, addresses, and waiting for content.

Everything a ContentStore must do is checked over the twin and Kubo alike in
``test_conformance.py``.
"""

from __future__ import annotations

import os
import threading

import pytest

from fedchain.errors import ConfigError, ContentError, ProtocolError, ServiceUnavailableError
from peer.content.cid import Cid
from peer.content.memory import MemoryContentNetwork, memory_peer_id
from peer.content.unixfs import file_cid
from peer.gossip.peer_id import peer_id_from_seed
from peer.updates import ContentFetcher
from tests.peer.content.conformance import MiB, never_added_cid

# What `ipfs add` (Kubo 0.41, fedchain's options) prints for bytes(i % 251 for i in range(3 MiB)).
PATTERN_3MIB_CID = "bafybeihzpjrbcpjpzcx4yxh3hasnjidsikmwmsrli7hhamhny5iueulu5a"


@pytest.fixture
def network() -> MemoryContentNetwork:
    return MemoryContentNetwork()


def test_cids_are_kubos(network: MemoryContentNetwork) -> None:
    store = network.store("a")
    assert store.add(bytes(i % 251 for i in range(3 * MiB))) == PATTERN_3MIB_CID


def test_addresses_and_peer_ids_are_derived_from_the_name(network: MemoryContentNetwork) -> None:
    store = network.store("hospital-1")
    peer_id = memory_peer_id("hospital-1")
    assert peer_id.startswith("12D3KooW") and store.peer_id == peer_id
    assert store.address == f"/memory/hospital-1/p2p/{peer_id}" == network.address("hospital-1")
    assert MemoryContentNetwork().store("hospital-1").peer_id == peer_id
    assert peer_id != memory_peer_id("hospital-2")
    assert len(peer_id) == len(peer_id_from_seed(bytes(32)))


@pytest.mark.parametrize("name", ["", "a/b", " a", 3])
def test_bad_node_names_are_config_errors(network: MemoryContentNetwork, name: object) -> None:
    with pytest.raises(ConfigError):
        network.store(name)  # type: ignore[arg-type]


def test_a_second_store_on_a_node_shares_its_content(network: MemoryContentNetwork) -> None:
    first = network.store("a")
    cid = first.add(b"shared")
    first.close()
    second = network.store("a")
    assert second.has_local(cid) and second.get(Cid.parse(cid), timeout=1) == b"shared"
    assert network.pins("a") == {cid}


def test_an_unreachable_node_is_unavailable_to_itself_and_to_peers(
    network: MemoryContentNetwork,
) -> None:
    a, b = network.store("a"), network.store("b")
    cid = a.add(b"only at a")
    b.connect(a.address)
    network.set_reachable("a", False)
    for call in (lambda: a.add(b"x"), lambda: a.get(cid, timeout=1), lambda: a.has_local(cid)):
        with pytest.raises(ServiceUnavailableError, match="unreachable"):
            call()
    with pytest.raises(ServiceUnavailableError):
        a.swarm_peer_count()
    assert b.swarm_peer_count() == 0
    with pytest.raises(ContentError, match="no connected peer has it"):
        b.get(cid, timeout=1)
    with pytest.raises(ServiceUnavailableError, match="cannot connect"):
        b.connect(a.address)
    network.set_reachable("a", True)
    assert b.get(cid, timeout=1) == b"only at a"


def test_corrupt_bytes_are_never_returned_nor_kept(network: MemoryContentNetwork) -> None:
    a, b = network.store("a"), network.store("b")
    genuine = os.urandom(3000)
    cid = file_cid(genuine)
    network.plant("a", cid, genuine + b"!")
    b.connect(a.address)
    with pytest.raises(ContentError, match=f"{cid} does not hash to it .a serves bytes hashing"):
        b.get(cid, timeout=1)
    assert b.has_local(cid) is False
    with pytest.raises(ContentError, match="does not hash"):
        a.get(cid, timeout=1)  # the holder itself checks too
    fetcher = ContentFetcher(b, timeout=1, max_bytes=MiB)
    try:
        with pytest.raises(ContentError, match=cid):
            fetcher.fetch_verified(cid)
    finally:
        fetcher.close()
    # A second, honest holder is used instead, as Bitswap drops a bad block.
    c = network.store("c")
    c.add(genuine)
    b.connect(c.address)
    assert b.get(cid, timeout=1) == genuine
    assert b.has_local(cid)


def test_fetcher_refuses_remembered_bytes_that_do_not_match(network: MemoryContentNetwork) -> None:
    fetcher = ContentFetcher(network.store("a"), timeout=1, max_bytes=MiB)
    try:
        cid = file_cid(b"mine")
        fetcher.remember(cid, b"not mine")
        with pytest.raises(ProtocolError, match=f"{cid} hashes to"):
            fetcher.fetch_verified(cid)
    finally:
        fetcher.close()


def test_only_connected_nodes_serve_and_disconnect_cuts_them_off(
    network: MemoryContentNetwork,
) -> None:
    a, b = network.store("a"), network.store("b")
    cid = a.add(b"x")
    with pytest.raises(ContentError, match="no connected peer"):
        b.get(cid, timeout=1)
    b.connect(a.address)
    assert (a.swarm_peer_count(), b.swarm_peer_count()) == (1, 1)
    network.disconnect("a", "b")
    assert (a.swarm_peer_count(), b.swarm_peer_count()) == (0, 0)
    with pytest.raises(ServiceUnavailableError, match="dial to self"):
        a.connect(a.address)
    wrong_id = f"/memory/a/p2p/{memory_peer_id('b')}"
    with pytest.raises(ServiceUnavailableError, match="cannot connect"):
        b.connect(wrong_id)


def test_missing_content_fails_at_once_unless_the_network_waits() -> None:
    network = MemoryContentNetwork()
    cid = never_added_cid()
    with pytest.raises(ContentError, match=cid):
        network.store("a").get(cid, timeout=3600)  # in-memory time: no waiting

    patient = MemoryContentNetwork(wait_for_content=True)
    a, b = patient.store("a"), patient.store("b")
    b.connect(a.address)
    data = os.urandom(100)
    later = threading.Timer(0.2, a.add, args=(data,))
    later.start()
    try:
        assert b.get(file_cid(data), timeout=10) == data
    finally:
        later.cancel()
    with pytest.raises(ContentError, match=r"within 0\.2 s"):
        b.get(never_added_cid(), timeout=0.2)


def test_stores_are_thread_safe(network: MemoryContentNetwork) -> None:
    stores = [network.store(f"n{i}") for i in range(8)]
    for store in stores[1:]:
        store.connect(stores[0].address)
    blobs = [os.urandom(2000) for _ in range(8)]
    cids = [stores[i].add(blobs[i]) for i in range(8)]
    errors: list[BaseException] = []

    def reader(store_index: int) -> None:
        try:
            for _ in range(20):
                for i, cid in enumerate(cids):
                    if i == 0 or store_index in (0, i):
                        assert stores[store_index].get(cid, timeout=1) == blobs[i]
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_fifty_nodes_fetch_from_each_other(network: MemoryContentNetwork) -> None:
    stores = [network.store(f"h{i:02d}") for i in range(50)]
    for store in stores[1:]:
        store.connect(stores[0].address)
    update = os.urandom(200_000)
    cid = stores[7].add(update)
    stores[7].connect(stores[0].address)
    with pytest.raises(ContentError):  # only 0 and 7's direct peers can serve 7's content
        stores[8].get(cid, timeout=1)
    stores[0].pin(cid)  # now the hub holds it
    assert all(store.get(cid, timeout=1, max_bytes=len(update)) == update for store in stores)
