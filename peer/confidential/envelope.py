"""The sealed envelope: content readable only by the holders of chosen X25519 keys.

Layout (all integers big-endian)::

    magic "fedchain-sealed\\n" (16) | version u8 | recipients u16 | body length u64
    recipients x (public key 32 | sealed content key 80)
    nonce 24 | XChaCha20-Poly1305 ciphertext of the content (body length, tag included)

The content is encrypted once under a fresh 32-byte content key; the content key is sealed to
each recipient with libsodium's sealed-box construction (ephemeral X25519 key, nonce =
BLAKE2b-192(ephemeral public || recipient public)), which :class:`nacl.public.SealedBox`
opens.  Everything before the nonce is the ciphertext's associated data, so a recipient list
or a length changed in transit fails authentication.

:func:`seal` draws the content key and ephemeral keys at random.  :func:`seal_deterministic`
derives them from a keyed hash of the plaintext and a context string instead (convergent
encryption): every honest peer that computed the same aggregate for the same recipients
produces the same bytes, hence the same CID, so the contract keeps comparing CIDs unchanged.
It reveals only whether two envelopes hold the same plaintext for the same context, which the
chain's agreement on the aggregate makes public anyway.

:func:`open_envelope` parses with bounds checked before anything is allocated or decrypted;
every violation is a :class:`~fedchain.errors.ProtocolError` naming what is wrong, and a reader
whose key is not among the recipients gets :class:`NotARecipient`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass

from nacl import bindings
from nacl.exceptions import CryptoError

from fedchain.errors import ProtocolError

MAGIC = b"fedchain-sealed\n"
VERSION = 1
MAX_RECIPIENTS = 1024
"""Most recipients one envelope may name: members of a federation plus its audit key."""
KEY_BYTES = 32
SEALED_KEY_BYTES = KEY_BYTES + 32 + 16
"""A sealed content key: ephemeral public key, the key, the Poly1305 tag."""
NONCE_BYTES = 24
TAG_BYTES = 16
_HEAD = struct.Struct(">16sBHQ")
ENTRY_BYTES = KEY_BYTES + SEALED_KEY_BYTES


class NotARecipient(ProtocolError):
    """This reader's key is not among the envelope's recipients (e.g. removed before the round)."""


def overhead(recipients: int) -> int:
    """Bytes an envelope adds to its content for ``recipients`` recipients."""
    return _HEAD.size + recipients * ENTRY_BYTES + NONCE_BYTES + TAG_BYTES


def is_sealed(data: bytes) -> bool:
    """Whether ``data`` starts like an envelope (says nothing about its validity)."""
    return data[: len(MAGIC)] == MAGIC


def public_key_of(secret: bytes) -> bytes:
    """The X25519 public key of a 32-byte secret."""
    return bytes(bindings.crypto_scalarmult_base(secret))


def _check_recipients(recipients: Sequence[bytes]) -> list[bytes]:
    keys = [bytes(k) for k in recipients]
    if not 0 < len(keys) <= MAX_RECIPIENTS:
        raise ValueError(f"an envelope needs 1..{MAX_RECIPIENTS} recipients, got {len(keys)}")
    for k in keys:
        if len(k) != KEY_BYTES or k == bytes(KEY_BYTES):
            raise ValueError(f"recipient key {k.hex()!r} is not a non-zero 32-byte X25519 key")
    if len(set(keys)) != len(keys):
        raise ValueError("the same recipient key is named twice")
    return keys


def _seal_key(content_key: bytes, recipient: bytes, ephemeral_secret: bytes) -> bytes:
    eph_public = public_key_of(ephemeral_secret)
    nonce = hashlib.blake2b(eph_public + recipient, digest_size=NONCE_BYTES).digest()
    boxed = bindings.crypto_box(content_key, nonce, recipient, ephemeral_secret)
    return eph_public + boxed


def _assemble(
    data: bytes, keys: list[bytes], content_key: bytes, nonce: bytes, ephemeral: list[bytes]
) -> bytes:
    head = _HEAD.pack(MAGIC, VERSION, len(keys), len(data) + TAG_BYTES)
    entries = b"".join(
        k + _seal_key(content_key, k, e) for k, e in zip(keys, ephemeral, strict=True)
    )
    aad = head + entries
    body = bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(data, aad, nonce, content_key)
    return aad + nonce + body


def seal(data: bytes, recipients: Sequence[bytes]) -> bytes:
    """``data`` in an envelope for ``recipients`` (X25519 public keys), with fresh randomness."""
    keys = _check_recipients(recipients)
    ephemeral = [secrets.token_bytes(KEY_BYTES) for _ in keys]
    return _assemble(
        data, keys, secrets.token_bytes(KEY_BYTES), secrets.token_bytes(NONCE_BYTES), ephemeral
    )


def seal_deterministic(data: bytes, recipients: Sequence[bytes], context: bytes) -> bytes:
    """``data`` in an envelope whose bytes depend only on ``data``, the recipients (in order)
    and ``context`` (see the module's note on convergent encryption)."""
    keys = _check_recipients(recipients)
    salt = hashlib.sha256(b"fedchain sealed context\0" + context + b"".join(keys)).digest()
    content_key = hmac.new(salt, data, hashlib.sha256).digest()

    def derive(label: bytes, size: int = KEY_BYTES) -> bytes:
        return hashlib.blake2b(label, key=content_key, digest_size=size).digest()

    ephemeral = [derive(b"ephemeral" + k) for k in keys]
    return _assemble(data, keys, content_key, derive(b"nonce", NONCE_BYTES), ephemeral)


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: who can open it, and the parts needed to."""

    recipients: tuple[bytes, ...]
    sealed_keys: tuple[bytes, ...]
    aad: bytes
    nonce: bytes
    body: bytes


def parse(data: bytes, *, max_bytes: int | None = None) -> Envelope:
    """Check an envelope's framing and bounds; ProtocolError naming the first violation."""
    if max_bytes is not None and len(data) > max_bytes:
        raise ProtocolError(f"sealed content is {len(data)} bytes, over the limit of {max_bytes}")
    if len(data) < _HEAD.size:
        raise ProtocolError(f"sealed content truncated: {len(data)} bytes, shorter than a header")
    magic, version, count, body_len = _HEAD.unpack_from(data)
    if magic != MAGIC:
        raise ProtocolError(
            "content is not sealed (no fedchain-sealed header): the task is members-only, so "
            "every update and aggregate must be sealed"
        )
    if version != VERSION:
        raise ProtocolError(f"sealed content has format version {version}, expected {VERSION}")
    if not 0 < count <= MAX_RECIPIENTS:
        raise ProtocolError(f"sealed content names {count} recipients, allowed 1..{MAX_RECIPIENTS}")
    aad_end = _HEAD.size + count * ENTRY_BYTES
    expected = aad_end + NONCE_BYTES + body_len
    if body_len < TAG_BYTES or len(data) != expected:
        raise ProtocolError(
            f"sealed content is {len(data)} bytes but its header implies {expected} "
            "(truncated or padded)"
        )
    entries = [
        data[_HEAD.size + i * ENTRY_BYTES : _HEAD.size + (i + 1) * ENTRY_BYTES]
        for i in range(count)
    ]
    recipients = tuple(e[:KEY_BYTES] for e in entries)
    if len(set(recipients)) != count:
        raise ProtocolError("sealed content names the same recipient twice")
    return Envelope(
        recipients=recipients,
        sealed_keys=tuple(e[KEY_BYTES:] for e in entries),
        aad=data[:aad_end],
        nonce=data[aad_end : aad_end + NONCE_BYTES],
        body=data[aad_end + NONCE_BYTES :],
    )


def open_envelope(data: bytes, secret: bytes, *, max_bytes: int | None = None) -> bytes:
    """The content of an envelope, opened with the X25519 ``secret`` of one recipient."""
    env = parse(data, max_bytes=max_bytes)
    public = public_key_of(secret)
    try:
        index = env.recipients.index(public)
    except ValueError:
        raise NotARecipient(
            f"this key (public 0x{public.hex()}) is not among the {len(env.recipients)} "
            "recipients of the sealed content: it was not a member's or the audit key when the "
            "round opened"
        ) from None
    try:
        content_key = bindings.crypto_box_seal_open(env.sealed_keys[index], public, secret)
        return bytes(
            bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(
                env.body, env.aad, env.nonce, content_key
            )
        )
    except CryptoError:
        raise ProtocolError(
            "sealed content failed authentication: it was altered, or sealed with a wrong key"
        ) from None
