"""Pairwise masks from X25519 key agreement: what member i adds, member j subtracts.

For members ``i < j`` (lower-case addresses compared), both compute the same shared secret
``X25519(sk_i, pk_j) == X25519(sk_j, pk_i)`` and derive the pair's seed with HKDF-SHA256 bound to
the task, the round and both addresses, so a seed is used for one pair in one round only and
revealing it (for a member that did not submit) says nothing about any other round or pair.
The seed keys ChaCha20, whose keystream read as little-endian uint64 is the mask: a standard
cipher, so every machine expands a seed to the same vector.
"""

from __future__ import annotations

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from nacl.bindings import crypto_scalarmult
from nacl.exceptions import RuntimeError as NaclRuntimeError

from consensus.secagg.fixed_point import Residues
from fedchain.errors import ProtocolError

SEED_BYTES = 32
_DOMAIN = b"fedchain/secagg/pair-seed/v1"
_NONCE = bytes(16)  # each seed keys one stream only, so a fixed nonce is safe


def pair_context(task_id: int, round_no: int, a: str, b: str) -> bytes:
    """HKDF ``info`` for the pair {a, b} in one round: the same whichever member computes it."""
    lo, hi = sorted((a.lower(), b.lower()))
    if lo == hi:
        raise ProtocolError(f"a member has no pair mask with itself ({a})")
    return b"\x00".join(
        [_DOMAIN, str(task_id).encode(), str(round_no).encode(), lo.encode(), hi.encode()]
    )


def pair_seed(my_secret: bytes, their_public: bytes, context: bytes) -> bytes:
    """The pair's 32-byte seed; ProtocolError for a malformed or low-order public key."""
    if len(their_public) != 32:
        raise ProtocolError(f"an X25519 public key has 32 bytes, got {len(their_public)}")
    try:
        shared = crypto_scalarmult(my_secret, their_public)
    except NaclRuntimeError:  # libsodium refuses an all-zero result (a low-order point)
        raise ProtocolError(
            f"public key {their_public.hex()} is a low-order point; no secret can be agreed "
            "with it (its owner must publish a real X25519 key)"
        ) from None
    return HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=context).derive(
        shared
    )


def expand(seed: bytes, length: int) -> Residues:
    """``length`` uniformly random uint64 values from ``seed`` (the ChaCha20 keystream)."""
    if len(seed) != SEED_BYTES:
        raise ProtocolError(f"a pair seed has {SEED_BYTES} bytes, got {len(seed)}")
    stream = Cipher(algorithms.ChaCha20(seed, _NONCE), mode=None).encryptor()
    raw = stream.update(bytes(8 * length))
    return np.frombuffer(raw, dtype="<u8").astype(np.uint64)


def signed_mask(seed: bytes, me: str, other: str, length: int) -> Residues:
    """The mask ``me`` adds toward ``other``: the stream if ``me`` sorts first, else its
    negation mod 2**64, so the pair's two masks sum to zero."""
    stream = expand(seed, length)
    return stream if me.lower() < other.lower() else np.uint64(0) - stream
