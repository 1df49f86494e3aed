"""``fedchain use-task``: point a peer config at a task (and the contract) without hand edits.

A founder runs ``fedchain init`` before the contract exists (the consortium needs its address
to deploy), and every institution moves to a new task when a task is upgraded; both are a
change of ``chain.contract`` / ``chain.task_id`` only. The file is edited line by line so that
its comments and the operator's own changes stay, and the result must parse to exactly the old
config with those values changed before it replaces the file (atomically, owner-only).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedchain.errors import ConfigError
from fedchain.private_files import write_private_text
from peer.config import parse_config

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")


@dataclass(frozen=True)
class TaskChange:
    """What the config named before and names now."""

    config: Path
    old_contract: str
    new_contract: str
    old_task_id: int
    new_task_id: int


def _set_in_chain_table(text: str, values: dict[str, str], config: Path) -> str:
    """``text`` with each ``key = …`` line of the ``[chain]`` table given the new value."""
    lines = text.splitlines(keepends=True)
    table = ""
    found: set[str] = set()
    for i, line in enumerate(lines):
        header = _TABLE.match(line)
        if header is not None:
            table = header.group(1).strip()
            continue
        if table != "chain":
            continue
        for key, value in values.items():
            match = re.match(rf"^(\s*{key}\s*=\s*)[^#\n]*?(\s*#.*)?(\r?\n)?$", line)
            if match is not None:
                lines[i] = f"{match.group(1)}{value}{match.group(2) or ''}{match.group(3) or ''}"
                found.add(key)
    missing = [key for key in values if key not in found]
    if missing:
        raise ConfigError(
            f"config file {config} has no `{missing[0]} = …` line in its [chain] table (as "
            "`fedchain init` writes it); set chain.contract and chain.task_id there by hand"
        )
    return "".join(lines)


def _without_chain_values(raw: dict[str, Any]) -> dict[str, Any]:
    chain = {k: v for k, v in raw.get("chain", {}).items() if k not in ("contract", "task_id")}
    return {**raw, "chain": chain}


def use_task(config: Path, task_id: int, contract: str | None = None) -> TaskChange:
    """Set ``chain.task_id`` (and ``chain.contract`` when given) in ``config``, keeping the rest.

    Nothing is written unless the edited file is a valid config that differs from the old one
    in those two values only.
    """
    if task_id < 1:
        raise ConfigError(f"task id {task_id} is not a task: tasks are numbered from 1")
    if contract is not None and _ADDRESS.fullmatch(contract) is None:
        raise ConfigError(
            f"contract {contract!r} is not an address: give 0x and 40 hex digits, as "
            "`fedchain deploy` printed it"
        )
    text = _read(config)
    old = parse_config(text, config)
    values = {"task_id": str(task_id)}
    if contract is not None:
        values["contract"] = f'"{contract}"'
    new_text = _set_in_chain_table(text, values, config)
    new = parse_config(new_text, config)  # a bad address or task id is named here
    if _without_chain_values(tomllib.loads(new_text)) != _without_chain_values(tomllib.loads(text)):
        raise ConfigError(
            f"config file {config}: changing chain.contract/chain.task_id line by line would "
            "change other settings too (unusual layout); set them by hand"
        )
    write_private_text(config, new_text)  # atomic, owner-only
    return TaskChange(
        config, old.chain.contract, new.chain.contract, old.chain.task_id, new.chain.task_id
    )


def _read(config: Path) -> str:
    if not config.is_file():
        raise ConfigError(f"config file {config} does not exist; pass --config <institution>.toml")
    try:
        return config.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {config} is not valid TOML: {exc}") from None
