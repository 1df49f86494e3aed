"""``fedchain init``: an institution's keys and peer config in one step, all or nothing.

Everything is made in a staging folder beside the targets and moved into place only once every
file exists, each with a no-clobber link, so an interrupted or refused init leaves no half-made
set of keys behind and never replaces an existing key or config.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from fedchain.errors import ConfigError
from fedchain.ops.encryption_key import ENCRYPTION_FILE, create_encryption_key
from fedchain.ops.peer_toml import PeerSettings, render_peer_config
from fedchain.private_files import private_dir, write_private_text
from peer.config import InstitutionConfig, parse_config
from peer.identity import ETH_FILE, LIBP2P_FILE, create_identity
from peer.keystore import DEFAULT_SCRYPT_N

KEYS_DIR = "keys"


@dataclass(frozen=True)
class InitResult:
    """What to send to the consortium, and where everything was written."""

    address: str
    peer_id: str
    encryption_public_key: str
    config: Path
    keys: tuple[Path, ...]


def check_institution_name(name: str) -> str:
    """``name`` if it is a valid ``institution.name``, else one ConfigError line."""
    try:
        InstitutionConfig(name=name)
    except ValidationError:
        raise ConfigError(
            f"institution name {name!r} is not allowed: use 1-64 letters, digits or '_.-' "
            "(e.g. cleveland or st-marys_2)"
        ) from None
    return name


def _targets(folder: Path, institution: str) -> tuple[Path, list[Path]]:
    keys = folder / KEYS_DIR
    return folder / f"{institution}.toml", [
        keys / ETH_FILE,
        keys / LIBP2P_FILE,
        keys / ENCRYPTION_FILE,
    ]


def _refuse_existing(paths: list[Path]) -> None:
    for path in paths:
        if path.exists():
            raise ConfigError(
                f"{path} already exists; fedchain init never overwrites keys or a config: "
                "move it away, or pass --dir with an empty folder"
            )


def _move_no_clobber(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)  # fails if dst exists, unlike rename
    except FileExistsError:
        raise ConfigError(
            f"{dst} appeared while fedchain init ran; nothing of this init was kept"
        ) from None
    src.unlink()


def _missing_folders(path: Path) -> list[Path]:
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def init_institution(
    settings: PeerSettings, folder: Path, password: str, *, scrypt_n: int = DEFAULT_SCRYPT_N
) -> InitResult:
    """Create keys (Ethereum, libp2p, X25519) and ``<institution>.toml`` in ``folder``."""
    name = check_institution_name(settings.institution)
    config, keys = _targets(folder, name)
    _refuse_existing([config, *keys])
    text = render_peer_config(settings)
    parse_config(text, config)  # a bad option (an address, a port) is named before any key
    keys_dir = keys[0].parent
    made = _missing_folders(keys_dir)  # removed again on failure, deepest first
    private_dir(keys_dir)
    if folder in made:  # a folder made here is owner-only; an existing --dir keeps its mode
        private_dir(folder)
    staging = Path(tempfile.mkdtemp(prefix=".fedchain-init-", dir=folder))
    moved: list[Path] = []
    try:
        ident = create_identity(staging, password, scrypt_n=scrypt_n)
        enc = create_encryption_key(staging / ENCRYPTION_FILE, password, scrypt_n=scrypt_n)
        write_private_text(staging / config.name, text)
        for target in [*keys, config]:
            _move_no_clobber(staging / target.name, target)
            moved.append(target)
    except BaseException:
        for path in moved:
            path.unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
        for folder_made in made:
            with contextlib.suppress(OSError):
                folder_made.rmdir()  # only if still empty
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return InitResult(ident.address, ident.peer_id, enc.public_hex, config, tuple(keys))
