"""CID conversions, checked against CIDs that Kubo 0.41 printed."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedchain.errors import ContentError
from peer.content.cid import (
    CODEC_DAG_PB,
    CODEC_RAW,
    Cid,
    cid_codec,
    cid_from_bytes,
    cid_from_digest,
    cid_to_bytes,
    digest_of_cid,
)

# `ipfs add --cid-version 1 --raw-leaves --chunker size-1048576` on Kubo 0.41:
KUBO_RAW = {
    b"": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    b"hello": "bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq",
    b"hello fedchain": "bafkreih2fjop66isr5si35gmadwgg3mi5fhz5tmcdaht7jjbbd7yzxtbc4",
}
# bytes(i % 251 for i in range(3 MiB)): three 1 MiB leaves under a dag-pb root.
KUBO_MULTI_BLOCK = "bafybeihzpjrbcpjpzcx4yxh3hasnjidsikmwmsrli7hhamhny5iueulu5a"
# "hello fedchain" with --hash blake2b-256.
KUBO_BLAKE2B = "bafk2bzacedixhahlzh5wfq742rkliqylynwb3cvarjrbjdlaal3gxr5cwfldg"
# The empty UnixFS directory as Kubo lists it (CIDv0).
KUBO_CIDV0 = "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"


@pytest.mark.parametrize(("content", "cid"), KUBO_RAW.items(), ids=["empty", "hello", "fc"])
def test_raw_cid_digest_is_the_sha256_of_the_content(content: bytes, cid: str):
    assert cid_codec(cid) == CODEC_RAW
    assert digest_of_cid(cid) == hashlib.sha256(content).digest()
    assert cid_from_digest(hashlib.sha256(content).digest(), CODEC_RAW) == cid


def test_multi_block_cid_is_dag_pb_and_its_digest_is_not_the_content_hash():
    content = bytes(i % 251 for i in range(3 * 1024 * 1024))
    assert cid_codec(KUBO_MULTI_BLOCK) == CODEC_DAG_PB
    digest = digest_of_cid(KUBO_MULTI_BLOCK)
    assert len(digest) == 32
    assert digest != hashlib.sha256(content).digest()
    assert cid_from_digest(digest, CODEC_DAG_PB) == KUBO_MULTI_BLOCK


@pytest.mark.parametrize("cid", [*KUBO_RAW.values(), KUBO_MULTI_BLOCK, KUBO_BLAKE2B])
def test_bytes_round_trip_and_layout(cid: str):
    raw = cid_to_bytes(cid)
    assert raw[0] == 0x01  # version 1
    assert cid_from_bytes(raw) == cid


def test_binary_layout_of_a_raw_sha256_cid():
    raw = cid_to_bytes(KUBO_RAW[b"hello"])
    assert raw[:4] == bytes([0x01, 0x55, 0x12, 0x20])
    assert raw[4:] == hashlib.sha256(b"hello").digest()
    assert len(raw) == 36


def test_non_sha256_cid_has_no_ledger_digest():
    assert cid_codec(KUBO_BLAKE2B) == CODEC_RAW
    with pytest.raises(ContentError, match="sha2-256"):
        digest_of_cid(KUBO_BLAKE2B)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (KUBO_CIDV0, "CIDv0"),
        ("", "expected a CID"),
        ("zb2rhe5P4gXftAwvA4eXQ5HJwsER2owDyS9sKaQRRVQPn93bA", "base32"),
        (KUBO_RAW[b"hello"].upper(), "base32"),
        ("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4ye!", "base32"),
        (KUBO_RAW[b"hello"][:-8], "truncated"),
        ("b" + base64.b32encode(bytes([0x00, 0x55])).decode().lower().rstrip("="), "version 0"),
        ("bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlB4xa7u5bf44yegnrjhc4yeq", "upper-case"),
    ],
    ids=["v0", "empty", "base58btc", "upper", "bad-char", "truncated", "version0", "mixed"],
)
def test_malformed_cids_are_rejected_with_a_reason(bad: str, why: str):
    with pytest.raises(ContentError, match=why):
        cid_to_bytes(bad)


def test_bytes_must_be_a_complete_cidv1():
    raw = cid_to_bytes(KUBO_RAW[b"hello"])
    with pytest.raises(ContentError, match="truncated"):
        cid_from_bytes(raw[:-1])
    with pytest.raises(ContentError, match="varint"):
        cid_from_bytes(raw[:2])
    with pytest.raises(ContentError, match="version 0"):
        cid_from_bytes(b"\x00" + raw[1:])
    with pytest.raises(ContentError, match="varint"):
        cid_from_bytes(b"")


def test_digest_must_be_32_bytes():
    with pytest.raises(ContentError, match="32 bytes"):
        cid_from_digest(b"\x01" * 31, CODEC_RAW)


@settings(deadline=None)
@given(digest=st.binary(min_size=32, max_size=32), codec=st.sampled_from([0x55, 0x70, 0x71]))
def test_digest_and_codec_survive_a_round_trip(digest: bytes, codec: int):
    cid = cid_from_digest(digest, codec)
    assert cid == cid.lower() and cid.startswith("b")
    assert digest_of_cid(cid) == digest
    assert cid_codec(cid) == codec
    assert cid_from_bytes(cid_to_bytes(cid)) == cid


@settings(deadline=None)
@given(codec=st.integers(min_value=0, max_value=2**40))
def test_multi_byte_codec_varints_round_trip(codec: int):
    assert cid_codec(cid_from_digest(b"\x07" * 32, codec)) == codec


# -- the Cid value type ---------------------------------------------------------


@pytest.mark.parametrize("text", [*KUBO_RAW.values(), KUBO_MULTI_BLOCK])
def test_cid_value_gives_back_every_form(text: str):
    cid = Cid.parse(text)
    assert (cid.text, str(cid), cid.binary) == (text, text, cid_to_bytes(text))
    assert cid.digest == digest_of_cid(text)
    assert cid.codec == cid_codec(text)
    assert Cid.from_bytes(cid.binary) == cid
    assert Cid.from_digest(cid.digest, cid.codec) == cid
    assert Cid.of(cid) is cid and Cid.of(text) == cid
    assert repr(cid) == f"Cid({text!r})"


def test_equal_cids_are_one_value():
    first = Cid.parse(KUBO_MULTI_BLOCK)
    second = Cid.from_bytes(bytearray(cid_to_bytes(KUBO_MULTI_BLOCK)))
    assert first == second and hash(first) == hash(second)
    assert len({first, second, Cid.parse(KUBO_RAW[b""])}) == 2
    assert first != KUBO_MULTI_BLOCK, "a Cid is not its text; compare Cid.parse(text)"
    with pytest.raises(AttributeError):
        first.binary = b""  # type: ignore[misc]


@pytest.mark.parametrize(
    "bad", ["", "not-a-cid", KUBO_CIDV0, KUBO_RAW[b""][:-3], KUBO_RAW[b""].upper()]
)
def test_cid_parse_names_the_bad_text(bad: str):
    with pytest.raises(ContentError) as caught:
        Cid.parse(bad)
    assert bad in str(caught.value) or bad == ""


def test_cid_from_bytes_names_the_bad_bytes():
    raw = cid_to_bytes(KUBO_RAW[b""])[:-1]
    with pytest.raises(ContentError, match=raw.hex()):
        Cid.from_bytes(raw)
    with pytest.raises(ContentError):
        Cid(b"")


def test_cid_digest_needs_sha256_and_from_digest_needs_32_bytes():
    blake = Cid.parse(KUBO_BLAKE2B)
    assert blake.text == KUBO_BLAKE2B
    with pytest.raises(ContentError, match="sha2-256"):
        _ = blake.digest
    with pytest.raises(ContentError, match="32 bytes, got 31"):
        Cid.from_digest(bytes(31))
    assert Cid.from_digest(bytes(32)).codec == CODEC_RAW
