"""The sealed envelope: round trips, refusals and bounded parsing."""

from __future__ import annotations

import struct

import pytest
from nacl.public import PrivateKey

from fedchain.errors import ProtocolError
from peer.confidential.envelope import (
    MAGIC,
    MAX_RECIPIENTS,
    NotARecipient,
    is_sealed,
    open_envelope,
    overhead,
    parse,
    public_key_of,
    seal,
    seal_deterministic,
)

SECRETS = [bytes(PrivateKey.generate()) for _ in range(3)]
PUBLICS = [public_key_of(s) for s in SECRETS]
CONTENT = b"safetensors bytes of a model " * 100


def test_every_recipient_opens_what_was_sealed() -> None:
    sealed = seal(CONTENT, PUBLICS)
    assert is_sealed(sealed) and CONTENT not in sealed
    assert len(sealed) == len(CONTENT) + overhead(len(PUBLICS))
    for secret in SECRETS:
        assert open_envelope(sealed, secret) == CONTENT


def test_random_sealing_differs_each_time_deterministic_does_not() -> None:
    assert seal(CONTENT, PUBLICS) != seal(CONTENT, PUBLICS)
    a = seal_deterministic(CONTENT, PUBLICS, b"round 1")
    assert a == seal_deterministic(CONTENT, PUBLICS, b"round 1")
    assert a != seal_deterministic(CONTENT, PUBLICS, b"round 2")
    assert a != seal_deterministic(CONTENT + b"!", PUBLICS, b"round 1")
    for secret in SECRETS:
        assert open_envelope(a, secret) == CONTENT


def test_a_key_that_is_not_a_recipient_is_refused() -> None:
    sealed = seal(CONTENT, PUBLICS[:2])
    with pytest.raises(NotARecipient, match="not among the 2 recipients"):
        open_envelope(sealed, SECRETS[2])


@pytest.mark.parametrize("where", ["recipient", "sealed key", "nonce", "body"])
def test_tampering_fails_authentication(where: str) -> None:
    sealed = bytearray(seal(CONTENT, PUBLICS))
    head = 16 + 1 + 2 + 8
    offsets = {
        "recipient": head + 112 + 5,  # the second recipient's key: the first still opens
        "sealed key": head + 32 + 40,
        "nonce": head + 3 * 112 + 3,
        "body": len(sealed) - 20,
    }
    sealed[offsets[where]] ^= 0x01
    with pytest.raises(ProtocolError, match="failed authentication"):
        open_envelope(bytes(sealed), SECRETS[0])


def test_truncated_and_padded_input_is_refused() -> None:
    sealed = seal(CONTENT, PUBLICS)
    for cut in (0, 10, 40, len(sealed) - 1):
        with pytest.raises(ProtocolError, match="truncated"):
            parse(sealed[:cut])
    with pytest.raises(ProtocolError, match="truncated or padded"):
        parse(sealed + b"\0")


def test_unsealed_content_and_other_versions_are_refused() -> None:
    with pytest.raises(ProtocolError, match="not sealed"):
        parse(b"\x08\0\0\0\0\0\0\0{}" + bytes(40))
    sealed = bytearray(seal(CONTENT, PUBLICS))
    sealed[16] = 9
    with pytest.raises(ProtocolError, match="format version 9"):
        parse(bytes(sealed))


@pytest.mark.parametrize("count", [0, MAX_RECIPIENTS + 1, 65535])
def test_recipient_count_out_of_bounds_is_refused_before_reading_it(count: int) -> None:
    forged = struct.pack(">16sBHQ", MAGIC, 1, count, 16) + bytes(64)
    with pytest.raises(ProtocolError, match=f"names {count} recipients"):
        parse(forged)


def test_size_limit_and_duplicate_recipients() -> None:
    sealed = seal(CONTENT, PUBLICS)
    with pytest.raises(ProtocolError, match="over the limit"):
        parse(sealed, max_bytes=len(sealed) - 1)
    entry = sealed[27 : 27 + 112]
    forged = struct.pack(">16sBHQ", MAGIC, 1, 2, 16) + entry + entry + bytes(24 + 16)
    with pytest.raises(ProtocolError, match="same recipient twice"):
        parse(forged)


def test_sealing_refuses_bad_recipient_lists() -> None:
    with pytest.raises(ValueError, match=r"1\.\.1024 recipients"):
        seal(CONTENT, [])
    with pytest.raises(ValueError, match="named twice"):
        seal(CONTENT, [PUBLICS[0], PUBLICS[0]])
    with pytest.raises(ValueError, match="non-zero 32-byte"):
        seal(CONTENT, [bytes(32)])
