"""A peer's configuration: one TOML file per institution, validated by pydantic.

Relative paths in the file are resolved against the file's own folder, so a
config directory can be moved as a whole.  Every problem is reported as one
``ConfigError`` line naming the file, the key and what to do.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fedchain.errors import ConfigError
from models.tasks.local_data import LocalData

PositiveFloat = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstitutionConfig(_Section):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")


class KeysConfig(_Section):
    eth_keystore: Path
    libp2p_keystore: Path
    encryption_keystore: Path | None = None
    """The X25519 keystore `fedchain init` made; needed for members-only tasks."""
    password_env: str = "FEDCHAIN_KEY_PASSWORD"
    password_file: Path | None = None


class ChainConfig(_Section):
    rpc_url: str = Field(pattern=r"^(https?|wss?)://")
    contract: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    task_id: int = Field(ge=1)
    rpc_timeout: PositiveFloat = 10.0
    receipt_timeout: PositiveFloat = 60.0


def _peer_multiaddr(value: str, what: str) -> str:
    """``value`` if it is a multiaddr naming a peer (``…/p2p/<id>``), else a ValueError
    saying what is expected."""
    from multiaddr import Multiaddr

    try:
        Multiaddr(value).value_for_protocol("p2p")
    except Exception:  # the library raises several unrelated types for one bad string
        raise ValueError(
            f"{value!r} is not {what}: expected /ip4/<address>/tcp/<port>/p2p/<id>"
        ) from None
    return value


class IpfsConfig(_Section):
    api: str = Field(pattern=r"^/(ip4|ip6|dns4|dns6|dns)/")
    swarm_peers: list[str] = Field(default_factory=list)
    fetch_timeout: PositiveFloat = 30.0

    @field_validator("swarm_peers")
    @classmethod
    def _swarm_addresses(cls, v: list[str]) -> list[str]:
        return [_peer_multiaddr(a, "another institution's Kubo swarm address") for a in v]


class GossipConfig(_Section):
    enabled: bool = True
    listen_host: str = "0.0.0.0"
    """All interfaces by default: the other institutions dial this port from their own hosts
    (a loopback default would leave a peer on its own machine unreachable). Give the address
    facing the consortium's network to listen there only."""
    listen_port: int = Field(default=0, ge=0, le=65535)
    bootstrap: list[str] = Field(default_factory=list)

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap_addresses(cls, v: list[str]) -> list[str]:
        return [_peer_multiaddr(a, "another peer's gossip address") for a in v]

    @field_validator("listen_host")
    @classmethod
    def _ip_address(cls, v: str) -> str:
        try:
            ipaddress.ip_address(v)
        except ValueError:
            raise ValueError(
                f"{v!r} is not an IP address; use this host's address on the consortium's "
                "network, or 0.0.0.0 for all interfaces"
            ) from None
        return v


class ProtocolConfig(_Section):
    poll_interval: PositiveFloat = 0.1
    max_outage: PositiveFloat = 300.0
    """Seconds the peer rides out an unreachable chain RPC or own Kubo before it gives up."""


class BaselineConfig(_Section):
    """``[baseline]``: what this institution would have got alone, for its dashboard and report."""

    local_only: bool = False
    """Once the task completes, train the task's model on the own data alone for as many epochs
    as the task's rounds trained and record its metrics on the own test split
    (``state_dir/local_only.json``): one more local training of the task's length."""


ALLOW_ATTACKS_ENV = "FEDCHAIN_ALLOW_ATTACKS"


class TestingConfig(_Section):
    """``[testing]``: make this peer a Byzantine member playing an attack (robustness tests).

    Refused unless the environment has ``FEDCHAIN_ALLOW_ATTACKS=1``, so that no institution
    turns it on by accident; see :mod:`fedchain.attacks`.
    """

    __test__ = False  # not a pytest test class

    attack: str = Field(min_length=1)
    attack_params: dict[str, Any] = Field(default_factory=dict)


class PeerConfig(_Section):
    institution: InstitutionConfig
    keys: KeysConfig
    chain: ChainConfig
    ipfs: IpfsConfig
    gossip: GossipConfig = GossipConfig()
    data: LocalData
    """``[data]``: where this institution's own records are (a built-in partition or a path)."""
    protocol: ProtocolConfig = ProtocolConfig()
    baseline: BaselineConfig = BaselineConfig()
    state_dir: Path
    testing: TestingConfig | None = None
    """Test only: play an attack (refused without ``FEDCHAIN_ALLOW_ATTACKS=1``)."""

    @field_validator("testing")
    @classmethod
    def _attacks_allowed(cls, v: TestingConfig | None) -> TestingConfig | None:
        if v is not None and os.environ.get(ALLOW_ATTACKS_ENV) != "1":
            raise ValueError(
                f"the [testing] table makes this peer attack the federation ({v.attack!r}) and "
                f"is for robustness tests only; it is refused unless {ALLOW_ATTACKS_ENV}=1 is "
                "set in the environment. Remove [testing] from a real institution's config"
            )
        return v

    @field_validator("state_dir")
    @classmethod
    def _not_empty(cls, v: Path) -> Path:
        if str(v).strip() in ("", "."):
            raise ValueError("state_dir must name a folder of its own")
        return v


def _resolve(base: Path, path: Path | None) -> Path | None:
    if path is None:
        return None
    return path if path.is_absolute() else (base / path).resolve()


def parse_config(text: str, path: Path) -> PeerConfig:
    """Validate a config's text (paths left as written), or raise one ConfigError naming
    ``path``, the key and the problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    try:
        return PeerConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        raise ConfigError(f"config file {path}: [{where}] {first['msg']}{more}") from None


def load_config(path: Path) -> PeerConfig:
    """Read, validate and resolve a peer config, or raise one clear ConfigError."""
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass --config <institution>.toml")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    cfg = parse_config(text, path)
    base = path.resolve().parent
    keys = cfg.keys.model_copy(
        update={
            "eth_keystore": _resolve(base, cfg.keys.eth_keystore),
            "libp2p_keystore": _resolve(base, cfg.keys.libp2p_keystore),
            "encryption_keystore": _resolve(base, cfg.keys.encryption_keystore),
            "password_file": _resolve(base, cfg.keys.password_file),
        }
    )
    return cfg.model_copy(
        update={
            "keys": keys,
            "data": cfg.data.resolved(base),
            "state_dir": _resolve(base, cfg.state_dir),
        }
    )
