"""The institution's X25519 key pair for members-only encryption, encrypted at rest.

The private key is stored in the same scrypt envelope as the Ethereum key and the libp2p seed
(:mod:`peer.keystore`), so one password and one backup procedure cover all three.  Only the
public key is shared with the consortium.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nacl.public import PrivateKey

from peer.keystore import DEFAULT_SCRYPT_N, new_secret, read_keystore, write_keystore

ENCRYPTION_FILE = "x25519.json"


@dataclass(frozen=True)
class EncryptionKey:
    """An X25519 private key; :attr:`public_hex` is what the other members encrypt to."""

    secret: bytes

    @property
    def private_key(self) -> PrivateKey:
        return PrivateKey(self.secret)

    @property
    def public_hex(self) -> str:
        return bytes(self.private_key.public_key).hex()


def create_encryption_key(
    path: Path, password: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> EncryptionKey:
    """Write a new key pair's private half to ``path`` (refuses to overwrite a key)."""
    secret = new_secret()  # any 32 bytes are an X25519 private key (clamped on use)
    write_keystore(path, secret, password, scrypt_n=scrypt_n)
    return EncryptionKey(secret)


def load_encryption_key(path: Path, password: str) -> EncryptionKey:
    return EncryptionKey(read_keystore(path, password))
