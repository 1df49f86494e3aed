"""ContentFetcher over every content backend: size limit passed down, bytes checked locally."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest

from fedchain.errors import ContentError, ContentTooLarge, ProtocolError
from peer.content.unixfs import file_cid
from peer.updates import ContentFetcher
from tests.peer.content.conformance import MiB, never_added_cid
from tests.peer.content.conftest import StorePeerType

LIMIT = 2 * MiB


@pytest.fixture
def fetcher(peer_a: StorePeerType, peer_b: StorePeerType) -> Iterator[ContentFetcher]:
    """B fetches what A holds."""
    peer_b.store.connect(peer_a.address)
    fetcher = ContentFetcher(peer_b.store, timeout=20, max_bytes=LIMIT)
    yield fetcher
    fetcher.close()


def test_update_is_fetched_and_checked_without_adding_it(
    pins_of: Callable[[object], str],
    peer_a: StorePeerType,
    peer_b: StorePeerType,
    fetcher: ContentFetcher,
):
    data = os.urandom(LIMIT)
    cid = peer_a.store.add(data)
    assert fetcher.fetch_verified(cid) == data
    # Re-adding would have pinned it on B; the check is local now.
    assert cid not in pins_of(peer_b)
    assert cid in pins_of(peer_a)


def test_update_over_the_limit_is_refused_before_download(
    peer_a: StorePeerType, peer_b: StorePeerType, fetcher: ContentFetcher
):
    cid = peer_a.store.add(os.urandom(LIMIT + 1))
    with pytest.raises(ContentTooLarge, match=cid) as caught:
        fetcher.fetch_verified(cid)
    assert (caught.value.size, caught.value.limit) == (LIMIT + 1, LIMIT)
    assert peer_b.store.has_local(cid) is False


def test_unserved_update_is_a_content_error(peer_b: StorePeerType):
    fetcher = ContentFetcher(peer_b.store, timeout=1.5, max_bytes=LIMIT)
    try:
        cid = never_added_cid()
        with pytest.raises(ContentError, match=cid):
            fetcher.fetch_verified(cid)
    finally:
        fetcher.close()


def test_remembered_bytes_are_checked_against_their_cid(fetcher: ContentFetcher):
    own = os.urandom(3000)
    cid = file_cid(own)  # never added anywhere: nothing is fetched
    fetcher.remember(cid, own)
    assert fetcher.fetch_verified(cid) == own
    fetcher.remember(cid, own + b"!")
    with pytest.raises(ProtocolError, match=f"{cid} hashes to {file_cid(own + b'!')}"):
        fetcher.fetch_verified(cid)
