"""Change a few settings of a peer config without hand edits: ``use-task`` and ``set-peers``.

A founder runs ``fedchain init`` before the contract exists (the consortium needs its address
to deploy) and before it knows the other institutions' addresses, and every institution moves
to a new task when a task is upgraded. Each is a change of a few known keys. The file is edited
line by line so that its comments and the operator's own changes stay, and the result must
parse to exactly the old config with those keys changed before it replaces the file
(atomically, owner-only); anything else is refused with the file untouched.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fedchain.errors import ConfigError
from fedchain.ops.peer_toml import toml_value
from fedchain.private_files import write_private_text
from peer.config import PeerConfig, parse_config

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]\s*(#.*)?$")

Key = tuple[str, str]
"""(table, key), e.g. ("chain", "task_id")."""


@dataclass(frozen=True)
class ConfigChange:
    """The config before and after (both validated, paths as written)."""

    config: Path
    old: PeerConfig
    new: PeerConfig


def _value_end(lines: list[str], i: int, first: str) -> int:
    """The index after the last line of a value starting with ``first`` on line ``i``."""
    depth = first.count("[") - first.count("]")
    j = i + 1
    while depth > 0 and j < len(lines):
        depth += lines[j].count("[") - lines[j].count("]")
        j += 1
    return j


def _set_lines(text: str, values: dict[Key, str], config: Path) -> str:
    """``text`` with each ``key = …`` of its table (one line, or a bracketed list over several)
    given the new value; its trailing comment on a one-line value is kept."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    table = ""
    found: set[Key] = set()
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _TABLE.match(line)
        if header is not None:
            table = header.group(1).strip()
        for (where, key), value in values.items():
            match = re.match(rf"^(\s*{key}\s*=\s*)([^#\n]*?)(\s*#.*)?(\r?\n)?$", line)
            if header is None and where == table and match is not None:
                end = _value_end(lines, i, match.group(2))
                comment = (match.group(3) or "") if end == i + 1 else ""
                out.append(f"{match.group(1)}{value}{comment}\n")
                found.add((where, key))
                i = end
                break
        else:
            out.append(line)
            i += 1
    missing = [k for k in values if k not in found]
    if missing:
        table, key = missing[0]
        raise ConfigError(
            f"config file {config} has no `{key} = …` line in its [{table}] table (as "
            f"`fedchain init` writes it); set {table}.{key} there by hand"
        )
    return "".join(out)


def _without(raw: dict[str, Any], keys: set[Key]) -> dict[str, Any]:
    tables = {t for t, _ in keys}
    return {
        name: {k: v for k, v in section.items() if (name, k) not in keys}
        if name in tables and isinstance(section, dict)
        else section
        for name, section in raw.items()
    }


def edit_config(config: Path, changes: dict[Key, object]) -> ConfigChange:
    """Set each ``(table, key)`` of ``config`` to its value, keeping everything else.

    Nothing is written unless the edited file is a valid config that differs from the old one
    in those keys only.
    """
    text = _read(config)
    old = parse_config(text, config)
    values = {k: toml_value(v) for k, v in changes.items()}
    new_text = _set_lines(text, values, config)
    new = parse_config(new_text, config)  # a bad value is named here, by its key
    keys = set(changes)
    if _without(tomllib.loads(new_text), keys) != _without(tomllib.loads(text), keys):
        raise ConfigError(
            f"config file {config}: changing {', '.join(f'{t}.{k}' for t, k in changes)} line "
            "by line would change other settings too (unusual layout); set them by hand"
        )
    write_private_text(config, new_text)  # atomic, owner-only
    return ConfigChange(config, old, new)


def use_task(config: Path, task_id: int, contract: str | None = None) -> ConfigChange:
    """Set ``chain.task_id`` (and ``chain.contract`` when given) in ``config``."""
    if task_id < 1:
        raise ConfigError(f"task id {task_id} is not a task: tasks are numbered from 1")
    if contract is not None and _ADDRESS.fullmatch(contract) is None:
        raise ConfigError(
            f"contract {contract!r} is not an address: give 0x and 40 hex digits, as "
            "`fedchain deploy` printed it"
        )
    changes: dict[Key, object] = {("chain", "task_id"): task_id}
    if contract is not None:
        changes["chain", "contract"] = contract
    return edit_config(config, changes)


def set_peers(
    config: Path, swarm_peers: list[str] | None, bootstrap: list[str] | None
) -> ConfigChange:
    """Replace ``ipfs.swarm_peers`` and/or ``gossip.bootstrap`` (each only when given)."""
    changes: dict[Key, object] = {}
    if swarm_peers is not None:
        changes["ipfs", "swarm_peers"] = swarm_peers
    if bootstrap is not None:
        changes["gossip", "bootstrap"] = bootstrap
    if not changes:
        raise ConfigError("nothing to set: give --swarm-peer and/or --bootstrap")
    return edit_config(config, changes)


def _read(config: Path) -> str:
    if not config.is_file():
        raise ConfigError(f"config file {config} does not exist; pass --config <institution>.toml")
    try:
        return config.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {config} is not valid TOML: {exc}") from None
