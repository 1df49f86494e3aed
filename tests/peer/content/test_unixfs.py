"""Local CID computation, checked against CIDs Kubo printed and against Kubo's own add."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedchain.errors import ContentError
from peer.content.cid import CODEC_DAG_PB, CODEC_RAW, cid_codec
from peer.content.unixfs import CHUNK_SIZE, MAX_FLAT_FILE_BYTES, FileCidBuilder, file_cid
from tests.peer.content.kubo_harness import KuboPeer
from tests.peer.content.test_cid import KUBO_MULTI_BLOCK, KUBO_RAW

MiB = CHUNK_SIZE
KUBO_SIZES = [0, 1, MiB - 1, MiB, MiB + 1, 2 * MiB, 3 * MiB + MiB // 2]


def _content(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


# -- against CIDs Kubo 0.41 printed (no daemon needed) ------------------------------


@pytest.mark.parametrize(("content", "cid"), KUBO_RAW.items(), ids=["empty", "hello", "fc"])
def test_single_chunk_content_is_named_like_kubo_names_it(content: bytes, cid: str):
    assert file_cid(content) == cid


def test_multi_chunk_content_is_named_like_kubo_names_it():
    assert file_cid(bytes(i % 251 for i in range(3 * MiB))) == KUBO_MULTI_BLOCK


def test_codec_switches_from_raw_to_dag_pb_past_one_chunk():
    assert cid_codec(file_cid(bytes(MiB))) == CODEC_RAW
    assert cid_codec(file_cid(bytes(MiB + 1))) == CODEC_DAG_PB


def test_one_changed_byte_changes_the_cid():
    data = bytearray(_content(2 * MiB + 5, seed=1))
    before = file_cid(data)
    data[MiB + 3] ^= 1
    assert file_cid(data) != before


def test_content_needing_a_deeper_tree_is_refused_before_hashing():
    too_big = bytearray(MAX_FLAT_FILE_BYTES + 1)  # zero pages, never touched
    with pytest.raises(ContentError, match=f"{MAX_FLAT_FILE_BYTES} bytes"):
        file_cid(too_big)
    builder = FileCidBuilder()
    with pytest.raises(ContentError, match="1024 chunks"):
        builder.update(memoryview(too_big))


@settings(deadline=None, max_examples=40)
@given(
    size=st.integers(min_value=0, max_value=3 * MiB),
    cuts=st.lists(st.integers(min_value=0, max_value=3 * MiB), max_size=6),
)
def test_feeding_pieces_gives_the_same_cid_as_the_whole(size: int, cuts: list[int]):
    data = _content(size, seed=size)
    builder = FileCidBuilder()
    bounds = [0, *sorted(min(cut, size) for cut in cuts), size]
    for start, end in itertools.pairwise(bounds):
        builder.update(data[start:end])
    assert builder.size == size
    assert builder.cid() == file_cid(data)


# -- against a running Kubo's add (fedchain's fixed ADD_OPTIONS) -------------------


@pytest.mark.parametrize("size", KUBO_SIZES, ids=lambda n: f"{n}B")
def test_local_cid_equals_kubo_add(kubo_a: KuboPeer, size: int):
    data = _content(size, seed=size)
    assert file_cid(data) == kubo_a.store.add(data)


@settings(deadline=None, max_examples=12)
@given(
    size=st.one_of(
        st.integers(min_value=0, max_value=4 * MiB),
        st.sampled_from([MiB - 1, MiB, MiB + 1, 2 * MiB, 2 * MiB + 1]),
    ),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_local_cid_equals_kubo_add_for_sampled_sizes(kubo_a: KuboPeer, size: int, seed: int):
    data = _content(size, seed)
    assert file_cid(data) == kubo_a.store.add(data)
