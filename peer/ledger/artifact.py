"""The built Federation contract as the package ships it: ABI and bytecode, no compiler.

An institution's peer only talks to a deployed contract, so it reads this JSON file (written
by ``fedchain build-contract`` in a checkout; a test fails when it is older than
``contracts/``) and never needs solc, ``node_modules/`` or the Solidity sources.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fedchain.errors import ToolchainError

ARTIFACT_FILE = Path(__file__).with_name("Federation.json")


@dataclass(frozen=True)
class ContractArtifact:
    """What deploying and calling one contract needs."""

    name: str
    source: str
    abi: tuple[dict[str, Any], ...]
    bytecode: str
    """Creation code, 0x-hex."""
    deployed_bytecode: str
    """Runtime code, 0x-hex."""
    compiler: str
    """Full compiler version, e.g. ``0.8.37+commit.f401782d.Emscripten.clang``."""
    source_hash: str
    warnings: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "abi": list(self.abi), "warnings": list(self.warnings)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ContractArtifact:
        return cls(
            **{
                **data,
                "abi": tuple(data["abi"]),
                "warnings": tuple(data.get("warnings", ())),
            }
        )


@functools.lru_cache(maxsize=1)
def shipped_artifact(path: Path = ARTIFACT_FILE) -> ContractArtifact:
    """The Federation artifact shipped with the package (read once per process)."""
    try:
        return ContractArtifact.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ToolchainError(
            f"the contract artifact {path} is missing or unreadable ({exc}); reinstall fedchain, "
            "or in a source checkout run `fedchain build-contract`"
        ) from None
