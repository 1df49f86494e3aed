"""Keys at rest: encrypted keystore files for the Ethereum key and the libp2p seed.

Both use the Web3 Secret Storage format (scrypt + AES-128-CTR + MAC) that
geth, clef and eth-account read, so an institution's security team can manage
the Ethereum key with tools it already trusts.  The libp2p ed25519 seed is
stored in the same envelope; files are written atomically with mode 0600.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fedchain.errors import KeystoreError
from fedchain.private_files import write_private_text

# secp256k1 group order: the envelope's address check needs a valid scalar.
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DEFAULT_SCRYPT_N = 2**18


def new_secret() -> bytes:
    """32 random bytes usable both as an Ethereum key and as an ed25519 seed."""
    while True:
        candidate = secrets.token_bytes(32)
        if 0 < int.from_bytes(candidate, "big") < _SECP256K1_N:
            return candidate


def write_keystore(
    path: Path, secret: bytes, password: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> None:
    """Encrypt ``secret`` under ``password`` and write it atomically, readable by the owner only."""
    if not password:
        raise KeystoreError("refusing to write a keystore with an empty password")
    if path.exists():
        raise KeystoreError(f"{path} already exists; not overwriting a key (move it away first)")
    envelope = Account.encrypt(secret, password, kdf="scrypt", iterations=scrypt_n)
    write_private_text(path, json.dumps(envelope))


def read_keystore(path: Path, password: str) -> bytes:
    """Decrypt a keystore file, turning every failure into one actionable KeystoreError."""
    if not path.is_file():
        raise KeystoreError(f"keystore {path} does not exist; create it with `fedchain keys new`")
    try:
        envelope = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise KeystoreError(f"keystore {path} is not a valid keystore file: {exc}") from None
    try:
        return bytes(Account.decrypt(envelope, password))
    except ValueError as exc:
        if "MAC mismatch" in str(exc):
            raise KeystoreError(
                f"wrong password for keystore {path}; check the password you supplied"
            ) from None
        raise KeystoreError(f"keystore {path} cannot be decrypted: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise KeystoreError(f"keystore {path} is malformed (missing {exc})") from None


def load_eth_account(path: Path, password: str) -> LocalAccount:
    account: LocalAccount = Account.from_key(read_keystore(path, password))
    return account


def resolve_password(env_name: str, password_file: Path | None) -> str:
    """The keystore password from a file (preferred) or an environment variable."""
    if password_file is not None:
        if not password_file.is_file():
            raise KeystoreError(f"password file {password_file} does not exist")
        value = password_file.read_text(encoding="utf-8").rstrip("\r\n")
        if not value:
            raise KeystoreError(f"password file {password_file} is empty")
        return value
    value = os.environ.get(env_name, "")
    if not value:
        raise KeystoreError(
            f"no keystore password: set the environment variable {env_name} "
            "or keys.password_file in the config"
        )
    return value
