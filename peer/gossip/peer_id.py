"""Ed25519 seeds and the libp2p peer IDs derived from them, without starting a host.

Deploy scripts register each institution's peer ID on-chain before any node
runs, and ``import libp2p`` costs seconds, so the derivation is done here by
hand from the libp2p peer-ID spec: protobuf-encoded public key, identity
multihash (the key is short enough), base58btc.
"""

from __future__ import annotations

import secrets

from nacl.bindings import crypto_sign_seed_keypair

from fedchain.errors import ConfigError

ED25519_SEED_BYTES = 32

# libp2p crypto.pb PublicKey{Type = Ed25519 (1), Data = 32 bytes}:
# field 1 varint tag 0x08, value 0x01; field 2 length-delimited tag 0x12, length 0x20.
_ED25519_PUBKEY_PROTOBUF_PREFIX = bytes([0x08, 0x01, 0x12, ED25519_SEED_BYTES])
# Multihash "identity" function code; used by libp2p for keys of at most 42 bytes.
_IDENTITY_MULTIHASH_CODE = 0x00
_BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def generate_ed25519_seed() -> bytes:
    """Return a fresh random 32-byte Ed25519 seed (the private key)."""
    return secrets.token_bytes(ED25519_SEED_BYTES)


def check_seed(seed: bytes) -> bytes:
    """Return ``seed`` as bytes, or raise ConfigError if it is not a 32-byte seed."""
    if not isinstance(seed, bytes | bytearray) or len(seed) != ED25519_SEED_BYTES:
        got = f"{len(seed)} bytes" if isinstance(seed, bytes | bytearray) else type(seed).__name__
        raise ConfigError(
            f"gossip private key must be a {ED25519_SEED_BYTES}-byte Ed25519 seed, got {got}; "
            "create one with peer.gossip.peer_id.generate_ed25519_seed()"
        )
    return bytes(seed)


def ed25519_public_key(seed: bytes) -> bytes:
    """Return the 32-byte Ed25519 public key for ``seed``."""
    public_key, _ = crypto_sign_seed_keypair(check_seed(seed))
    return bytes(public_key)


def peer_id_from_seed(seed: bytes) -> str:
    """Return the base58 libp2p peer ID (``12D3KooW...``) a host with this seed reports."""
    encoded_key = _ED25519_PUBKEY_PROTOBUF_PREFIX + ed25519_public_key(seed)
    multihash = bytes([_IDENTITY_MULTIHASH_CODE, len(encoded_key)]) + encoded_key
    return _base58_encode(multihash)


def _base58_encode(raw: bytes) -> str:
    """Bitcoin-alphabet base58, keeping leading zero bytes as '1'."""
    number = int.from_bytes(raw, "big")
    digits: list[str] = []
    while number:
        number, remainder = divmod(number, 58)
        digits.append(_BASE58_ALPHABET[remainder])
    leading_zeros = len(raw) - len(raw.lstrip(b"\x00"))
    return "1" * leading_zeros + "".join(reversed(digits))
