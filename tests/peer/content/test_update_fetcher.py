"""UpdateFetcher through real Kubo daemons: size limit passed down, bytes checked locally."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedchain.errors import ContentError, ContentTooLarge, ProtocolError
from peer.content.unixfs import file_cid
from peer.updates import UpdateFetcher
from tests.peer.content.conformance import MiB, never_added_cid
from tests.peer.content.kubo_harness import KuboPeer, cli

LIMIT = 2 * MiB


@pytest.fixture
def fetcher(kubo_a: KuboPeer, kubo_b: KuboPeer) -> Iterator[UpdateFetcher]:
    """B fetches what A holds."""
    kubo_b.store.connect(kubo_a.address)
    fetcher = UpdateFetcher(kubo_b.store, timeout=20, max_bytes=LIMIT)
    yield fetcher
    fetcher.close()


def _recursive_pins(ipfs_bin: Path, peer: KuboPeer) -> str:
    return cli(ipfs_bin, peer.daemon, "pin", "ls", "--type=recursive", "--quiet")


def test_update_is_fetched_and_checked_without_adding_it(
    ipfs_bin: Path, kubo_a: KuboPeer, kubo_b: KuboPeer, fetcher: UpdateFetcher
):
    data = os.urandom(LIMIT)
    cid = kubo_a.store.add(data)
    assert fetcher.fetch_verified(cid) == data
    # Re-adding would have pinned it on B; the check is local now.
    assert cid not in _recursive_pins(ipfs_bin, kubo_b)
    assert cid in _recursive_pins(ipfs_bin, kubo_a)


def test_update_over_the_limit_is_refused_before_download(
    kubo_a: KuboPeer, kubo_b: KuboPeer, fetcher: UpdateFetcher
):
    cid = kubo_a.store.add(os.urandom(LIMIT + 1))
    with pytest.raises(ContentTooLarge, match=cid) as caught:
        fetcher.fetch_verified(cid)
    assert (caught.value.size, caught.value.limit) == (LIMIT + 1, LIMIT)
    assert kubo_b.store.has_local(cid) is False


def test_unserved_update_is_a_content_error(kubo_b: KuboPeer):
    fetcher = UpdateFetcher(kubo_b.store, timeout=1.5, max_bytes=LIMIT)
    try:
        cid = never_added_cid()
        with pytest.raises(ContentError, match=cid):
            fetcher.fetch_verified(cid)
    finally:
        fetcher.close()


def test_remembered_bytes_are_checked_against_their_cid(fetcher: UpdateFetcher):
    own = os.urandom(3000)
    cid = file_cid(own)  # never added anywhere: nothing is fetched
    fetcher.remember(cid, own)
    assert fetcher.fetch_verified(cid) == own
    fetcher.remember(cid, own + b"!")
    with pytest.raises(ProtocolError, match=f"{cid} hashes to {file_cid(own + b'!')}"):
        fetcher.fetch_verified(cid)
