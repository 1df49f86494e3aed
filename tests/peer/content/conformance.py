"""Behaviour every ContentStore must show, whatever the backend.

A backend's test class inherits ``ContentStoreConformance`` and provides three
fixtures:

* ``peer_a``, ``peer_b``: objects with ``.store`` (a ContentStore) and
  ``.address`` (the multiaddr other stores ``connect`` to), members of one
  network; they may be shared between tests, so tests use fresh random bytes;
* ``open_store_a``: a callable returning a *new* ContentStore on A's backend
  (for tests that close it);
* ``spare_peer``: a callable returning a fresh peer the test owns (``.store``,
  ``.address``, ``.take_down()`` making its backend unreachable), in the same
  network as A and B.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Protocol

import pytest

from fedchain.errors import ConfigError, ContentError, ContentTooLarge, ServiceUnavailableError
from peer.content.abc import ContentStore
from peer.content.cid import (
    CODEC_DAG_PB,
    CODEC_RAW,
    cid_codec,
    cid_from_digest,
    digest_of_cid,
)

MiB = 1024 * 1024
MISSING_TIMEOUT = 1.5
UNUSED_PEER_ID = "12D3KooWQ3YRARNgLBmpMLzdZUgU3fkSyQyubLmLMFezrv6dsjpd"


class StorePeer(Protocol):
    @property
    def store(self) -> ContentStore: ...

    @property
    def address(self) -> str: ...


class SparePeer(StorePeer, Protocol):
    def take_down(self) -> None: ...


def never_added_cid() -> str:
    """A well-formed CIDv1 of random bytes nobody has stored."""
    return cid_from_digest(hashlib.sha256(os.urandom(32)).digest(), CODEC_RAW)


class ContentStoreConformance:
    # -- identity ------------------------------------------------------------

    def test_peer_ids_are_stable_and_distinct(self, peer_a: StorePeer, peer_b: StorePeer):
        assert isinstance(peer_a.store.peer_id, str) and peer_a.store.peer_id
        assert peer_a.store.peer_id == peer_a.store.peer_id
        assert peer_a.store.peer_id != peer_b.store.peer_id
        assert peer_a.address.endswith("/p2p/" + peer_a.store.peer_id)

    # -- add / get locally -------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 1000, MiB, MiB + 1, 3 * MiB], ids=lambda n: f"{n}B")
    def test_add_then_get_returns_the_same_bytes(self, peer_a: StorePeer, size: int):
        data = os.urandom(size)
        cid = peer_a.store.add(data)
        assert peer_a.store.get(cid, timeout=10) == data

    def test_small_content_is_one_raw_block_named_by_its_sha256(self, peer_a: StorePeer):
        data = os.urandom(4096)
        cid = peer_a.store.add(data)
        assert cid.startswith("b")
        assert cid_codec(cid) == CODEC_RAW
        assert digest_of_cid(cid) == hashlib.sha256(data).digest()

    def test_large_content_is_a_dag_pb_root(self, peer_a: StorePeer):
        data = os.urandom(2 * MiB + 17)
        cid = peer_a.store.add(data)
        assert cid_codec(cid) == CODEC_DAG_PB
        assert digest_of_cid(cid) != hashlib.sha256(data).digest()
        assert len(digest_of_cid(cid)) == 32

    def test_cid_depends_only_on_the_bytes(self, peer_a: StorePeer, peer_b: StorePeer):
        for data in (os.urandom(100), os.urandom(3 * MiB)):
            first = peer_a.store.add(data)
            assert peer_a.store.add(data) == first
            assert peer_b.store.add(data) == first
            assert peer_a.store.add(data + b"\0") != first

    def test_added_content_is_local_and_pin_is_idempotent(self, peer_a: StorePeer):
        cid = peer_a.store.add(os.urandom(3 * MiB))
        assert peer_a.store.has_local(cid)
        peer_a.store.pin(cid)
        peer_a.store.pin(cid)
        assert peer_a.store.has_local(cid)

    # -- absent and malformed content ------------------------------------------

    def test_unknown_cid_is_not_local(self, peer_a: StorePeer):
        assert peer_a.store.has_local(never_added_cid()) is False

    def test_get_of_unavailable_cid_is_a_content_error(self, peer_a: StorePeer):
        cid = never_added_cid()
        with pytest.raises(ContentError, match=cid):
            peer_a.store.get(cid, timeout=MISSING_TIMEOUT)
        with pytest.raises(ContentError, match=cid):
            peer_a.store.get(cid, timeout=MISSING_TIMEOUT, max_bytes=MiB)
        assert peer_a.store.has_local(cid) is False

    def test_pin_of_unavailable_cid_times_out_with_content_error(self, peer_a: StorePeer):
        cid = never_added_cid()
        with pytest.raises(ContentError, match=cid):
            peer_a.store.pin(cid, timeout=MISSING_TIMEOUT)
        assert peer_a.store.has_local(cid) is False

    @pytest.mark.parametrize(
        "bad_cid",
        [
            "",
            "not-a-cid",
            "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn",  # CIDv0
            "bafkreih2fjop66isr5si35gmadwgg3mi5fhz5tmcdaht7jjbbd7yzxtb",  # truncated
        ],
        ids=["empty", "garbage", "cidv0", "truncated"],
    )
    def test_malformed_cids_are_rejected(self, peer_a: StorePeer, bad_cid: str):
        with pytest.raises(ContentError):
            peer_a.store.get(bad_cid, timeout=1)
        with pytest.raises(ContentError):
            peer_a.store.has_local(bad_cid)
        with pytest.raises(ContentError):
            peer_a.store.pin(bad_cid, timeout=1)

    # -- between peers ---------------------------------------------------------

    @pytest.mark.parametrize("size", [5000, 3 * MiB], ids=["one-block", "multi-block"])
    def test_peer_fetches_content_added_elsewhere(
        self, peer_a: StorePeer, peer_b: StorePeer, size: int
    ):
        data = os.urandom(size)
        cid = peer_a.store.add(data)
        assert peer_b.store.has_local(cid) is False
        peer_b.store.connect(peer_a.address)
        assert peer_b.store.get(cid, timeout=20) == data
        assert peer_b.store.has_local(cid)

    def test_pin_fetches_content_from_a_peer(self, peer_a: StorePeer, peer_b: StorePeer):
        data = os.urandom(3 * MiB)
        cid = peer_a.store.add(data)
        peer_b.store.connect(peer_a.address)
        peer_b.store.pin(cid, timeout=20)
        assert peer_b.store.has_local(cid)
        assert peer_b.store.get(cid, timeout=5) == data

    def test_connect_is_idempotent(self, peer_a: StorePeer, peer_b: StorePeer):
        peer_b.store.connect(peer_a.address)
        after_first = peer_b.store.swarm_peer_count()
        peer_b.store.connect(peer_a.address)
        assert after_first >= 1
        assert peer_b.store.swarm_peer_count() == after_first
        assert peer_a.store.swarm_peer_count() >= 1

    # -- size limits -----------------------------------------------------------

    @pytest.mark.parametrize("size", [5000, 3 * MiB], ids=["one-block", "multi-block"])
    def test_content_over_the_limit_is_refused_without_being_fetched(
        self, peer_a: StorePeer, peer_b: StorePeer, size: int
    ):
        data = os.urandom(size)
        cid = peer_a.store.add(data)
        peer_b.store.connect(peer_a.address)
        with pytest.raises(ContentTooLarge, match=cid) as caught:
            peer_b.store.get(cid, timeout=20, max_bytes=size - 1)
        assert (caught.value.cid, caught.value.size, caught.value.limit) == (cid, size, size - 1)
        message = str(caught.value)
        assert f"{size} bytes" in message and f"{size - 1}-byte limit" in message
        if size > MiB:  # only the root block (sizes, links) was read, not the data
            assert peer_b.store.has_local(cid) is False
        assert peer_b.store.get(cid, timeout=20, max_bytes=size) == data

    def test_limit_applies_to_local_content_too(self, peer_a: StorePeer):
        data = os.urandom(MiB + 1)
        cid = peer_a.store.add(data)
        with pytest.raises(ContentTooLarge, match=cid):
            peer_a.store.get(cid, timeout=10, max_bytes=MiB)
        assert peer_a.store.get(cid, timeout=10, max_bytes=MiB + 1) == data
        assert peer_a.store.get(cid, timeout=10, max_bytes=None) == data

    def test_empty_content_fits_a_zero_limit(self, peer_a: StorePeer):
        cid = peer_a.store.add(b"")
        assert peer_a.store.get(cid, timeout=10, max_bytes=0) == b""
        with pytest.raises(ContentTooLarge):
            peer_a.store.get(peer_a.store.add(b"x"), timeout=10, max_bytes=0)

    def test_connect_to_an_address_without_peer_id_is_a_config_error(self, peer_b: StorePeer):
        with pytest.raises(ConfigError, match="/p2p/"):
            peer_b.store.connect("/ip4/127.0.0.1/tcp/1")

    def test_connect_to_a_dead_address_is_service_unavailable(self, peer_b: StorePeer):
        # A valid peer id nobody runs (an already connected peer would be reused).
        dead = f"/ip4/127.0.0.1/tcp/1/p2p/{UNUSED_PEER_ID}"
        with pytest.raises(ServiceUnavailableError, match="cannot connect"):
            peer_b.store.connect(dead)

    def test_swarm_peer_count_is_zero_alone_and_counts_a_connection(
        self, peer_a: StorePeer, spare_peer: Callable[[], SparePeer]
    ):
        loner = spare_peer()
        assert loner.store.swarm_peer_count() == 0
        loner.store.connect(peer_a.address)
        assert loner.store.swarm_peer_count() == 1

    # -- lifecycle -----------------------------------------------------------

    def test_a_store_whose_backend_goes_away_is_unavailable(
        self, spare_peer: Callable[[], SparePeer]
    ):
        peer = spare_peer()
        cid = peer.store.add(b"soon unreachable")
        peer.take_down()
        with pytest.raises(ServiceUnavailableError):
            peer.store.get(cid, timeout=2)
        with pytest.raises(ServiceUnavailableError):
            peer.store.add(b"more")

    def test_content_of_a_peer_that_went_away_cannot_be_fetched(
        self, peer_b: StorePeer, spare_peer: Callable[[], SparePeer]
    ):
        peer = spare_peer()
        cid = peer.store.add(os.urandom(1000))
        peer_b.store.connect(peer.address)
        peer.take_down()
        with pytest.raises(ContentError, match=cid):
            peer_b.store.get(cid, timeout=MISSING_TIMEOUT)
        assert peer_b.store.has_local(cid) is False

    def test_close_is_idempotent_and_final(self, open_store_a: Callable[[], ContentStore]):
        store = open_store_a()
        cid = store.add(b"closing soon")
        store.close()
        store.close()
        with pytest.raises(ServiceUnavailableError):
            store.get(cid, timeout=1)

    def test_store_is_a_context_manager(self, open_store_a: Callable[[], ContentStore]):
        with open_store_a() as store:
            cid = store.add(b"inside a with block")
        with pytest.raises(ServiceUnavailableError):
            store.has_local(cid)
