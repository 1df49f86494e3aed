"""``fedchain status``: one line per thing an institution's operator watches.

Tooling outside the node: it reads the chain (through the ledger interface, as an observer
that signs nothing), the own Kubo and the peer's own files, and never talks to the running
node.  Exit code 0 when nothing is down, 1 when any line is a failure.
"""

from __future__ import annotations

import json
from pathlib import Path

from eth_account import Account
from eth_utils.address import to_checksum_address
from rich.console import Console
from rich.markup import escape

from fedchain.errors import FedchainError, KeystoreError
from fedchain.ops.peer_toml import PLACEHOLDER_CONTRACT
from fedchain.ops.status_chain import credit_line, membership_line, task_line, work_line
from fedchain.ops.status_line import Level, StatusLine
from fedchain.ops.status_services import gossip_line, kubo_line, records_line
from peer.config import PeerConfig
from peer.identity import load_identity
from peer.keystore import resolve_password
from peer.ledger.client import FederationClient, connect

CHAIN_TOPICS = ("membership", "task", "own work", "credit")
_STYLE = {Level.OK: "green", Level.WARN: "yellow", Level.FAIL: "bold red", Level.SKIP: "dim"}


def keystore_address(path: Path) -> str:
    """The address a Web3 Secret Storage file names in clear (no password needed)."""
    try:
        address = json.loads(path.read_text(encoding="utf-8"))["address"]
        return to_checksum_address("0x" + str(address).removeprefix("0x"))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise KeystoreError(
            f"cannot read the address from keystore {path} ({exc}); check keys.eth_keystore"
        ) from None


def _keys(cfg: PeerConfig) -> tuple[StatusLine, str | None, str | None]:
    """The keys line, this peer's address and (when the password is at hand) its peer ID."""
    try:
        address = keystore_address(cfg.keys.eth_keystore)
    except KeystoreError as exc:
        return StatusLine(Level.FAIL, "keys", str(exc)), None, None
    try:
        password = resolve_password(cfg.keys.password_env, cfg.keys.password_file)
    except KeystoreError as exc:
        return (
            StatusLine(Level.WARN, "keys", f"{address}; keys not decrypted: {exc}"),
            address,
            None,
        )
    try:
        ident = load_identity(cfg.keys.eth_keystore, cfg.keys.libp2p_keystore, password)
    except KeystoreError as exc:
        return StatusLine(Level.FAIL, "keys", str(exc)), address, None
    return (
        StatusLine(Level.OK, "keys", f"both keystores decrypt: {address}"),
        address,
        ident.peer_id,
    )


def _chain_lines(
    cfg: PeerConfig, address: str | None, peer_id: str | None, hint: str
) -> list[StatusLine]:
    """The chain RPC line, then membership, task, own work and credit when they can be read."""
    url = cfg.chain.rpc_url
    try:
        w3 = connect(url, timeout=cfg.chain.rpc_timeout)
    except FedchainError:
        return [
            StatusLine(
                Level.FAIL,
                "chain RPC",
                f"the chain RPC at {url} is not reachable; start the chain node or fix "
                f"chain.rpc_url in {hint}",
            )
        ]
    if cfg.chain.contract == PLACEHOLDER_CONTRACT:
        return [
            StatusLine(
                Level.FAIL,
                "chain RPC",
                f"{url} answers, but chain.contract in {hint} is still the placeholder; set "
                "it to the Federation address the consortium sent with `fedchain use-task "
                f"--config {hint} --contract 0x… --task-id N`",
            )
        ]
    try:
        ledger = FederationClient(w3, cfg.chain.contract, Account.create())
    except FedchainError as exc:
        return [StatusLine(Level.FAIL, "chain RPC", f"{url} answers, but {exc}")]
    lines = [
        StatusLine(
            Level.OK,
            "chain RPC",
            f"{url} answers: chain {ledger.chain_id}, block {ledger.block_number()}",
        )
    ]
    if address is None:
        return lines
    try:
        lines.append(membership_line(ledger, address, peer_id))
        line, task = task_line(ledger, cfg.chain.task_id)
        lines.append(line)
        if task is not None:
            lines.append(work_line(ledger, task, address))
            lines.append(credit_line(ledger, task, address, hint))
    except FedchainError as exc:
        lines.append(StatusLine(Level.FAIL, "chain RPC", f"reading {url} failed: {exc}"))
    return lines


def read_status(cfg: PeerConfig, config_path: Path) -> list[StatusLine]:
    """Every line of the status, in a fixed order; missing ones are marked as skipped."""
    hint = str(config_path)
    keys, address, peer_id = _keys(cfg)
    chain = _chain_lines(cfg, address, peer_id, hint)
    seen = {line.topic for line in chain}
    reason = "chain not readable" if address is not None else "no address (see keys)"
    skipped = [
        StatusLine(Level.SKIP, t, f"not checked: {reason}") for t in CHAIN_TOPICS if t not in seen
    ]
    return [
        keys,
        *chain,
        *skipped,
        kubo_line(cfg, hint),
        gossip_line(cfg, hint),
        records_line(cfg),
    ]


def exit_code(lines: list[StatusLine]) -> int:
    return 1 if any(line.level is Level.FAIL for line in lines) else 0


def print_status(lines: list[StatusLine], console: Console | None = None) -> int:
    """Print one line per check; return the exit code (1 when any line failed)."""
    out = console or Console(soft_wrap=True)
    width = max(len(line.topic) for line in lines)
    for line in lines:
        style = _STYLE[line.level]
        out.print(f"[{style}]{line.level.value:<4}[/] {line.topic:<{width}}  {escape(line.text)}")
    return exit_code(lines)
