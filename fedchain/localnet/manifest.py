"""``devnet.json``: what a devnet kept on disk needs, beyond its configs, to come back.

The configs already name the chain's RPC URL, the contract, the task and each Kubo's
API; this file adds what a resumed devnet must restart on the same ports (chain,
Kubo API and swarm, gossip) and whether the chain's state was kept at all.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from fedchain.errors import ConfigError
from fedchain.private_files import write_private_text

MANIFEST = "devnet.json"
CHAIN_STATE = {"anvil": "chain-state.json", "ganache": "chain-db", "geth": "chain-geth"}
"""Where a persistent devnet keeps its chain, inside its folder."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SavedHospital(_Frozen):
    name: str
    api_port: int
    swarm_port: int
    gossip_port: int


class DevnetManifest(_Frozen):
    chain: str
    chain_port: int
    persistent: bool
    contract: str
    task_id: int
    spec_cid: str
    model_cid: str
    hospitals: list[SavedHospital]

    def write(self, root: Path) -> None:
        write_private_text(root / MANIFEST, self.model_dump_json(indent=2) + "\n")

    @classmethod
    def read_resumable(cls, root: Path, chain: str) -> DevnetManifest:
        """The manifest in ``root`` if that devnet can be resumed on ``chain``, else ConfigError."""
        path = root / MANIFEST
        try:
            manifest = cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            if isinstance(exc, ValidationError):
                first = exc.errors()[0]
                problem = f"{'.'.join(map(str, first['loc'])) or 'file'}: {first['msg']}"
            else:
                problem = exc.strerror or str(exc)
            raise ConfigError(
                f"cannot read {path} ({problem}); it is written by `fedchain devnet --state DIR`: "
                "point --state at such a folder, or at an empty one to start a new devnet"
            ) from exc
        if not manifest.persistent:
            raise ConfigError(
                f"the devnet in {root} was started without --state, so its chain is lost; "
                "start a new one in an empty folder"
            )
        if manifest.chain != chain:
            raise ConfigError(
                f"the devnet in {root} runs on {manifest.chain}, not {chain}; "
                f"resume it with --chain {manifest.chain}"
            )
        if not (root / CHAIN_STATE[chain]).exists():
            raise ConfigError(
                f"{root} has no saved chain state ({CHAIN_STATE[chain]}); the federation "
                "cannot be resumed: start a new one in an empty folder"
            )
        return manifest
