"""An institution's two identities: its Ethereum account and its libp2p peer ID.

Both secrets live in encrypted keystore files; the on-chain membership record
ties the two together, which is how a receiver checks that a gossip sender is
the member it claims to be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount

from peer.gossip.peer_id import peer_id_from_seed
from peer.keystore import DEFAULT_SCRYPT_N, new_secret, read_keystore, write_keystore

ETH_FILE = "eth.json"
LIBP2P_FILE = "libp2p.json"


@dataclass(frozen=True)
class Identity:
    account: LocalAccount
    libp2p_seed: bytes

    @property
    def address(self) -> str:
        return str(self.account.address)

    @property
    def peer_id(self) -> str:
        return peer_id_from_seed(self.libp2p_seed)


def create_identity(
    out_dir: Path,
    password: str,
    *,
    eth_secret: bytes | None = None,
    scrypt_n: int = DEFAULT_SCRYPT_N,
) -> Identity:
    """Write ``eth.json`` and ``libp2p.json`` into ``out_dir``; refuse to overwrite keys."""
    eth = eth_secret if eth_secret is not None else new_secret()
    seed = new_secret()
    write_keystore(out_dir / ETH_FILE, eth, password, scrypt_n=scrypt_n)
    write_keystore(out_dir / LIBP2P_FILE, seed, password, scrypt_n=scrypt_n)
    return Identity(Account.from_key(eth), seed)


def load_identity(eth_keystore: Path, libp2p_keystore: Path, password: str) -> Identity:
    return Identity(
        Account.from_key(read_keystore(eth_keystore, password)),
        read_keystore(libp2p_keystore, password),
    )
