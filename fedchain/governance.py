"""``fedchain propose`` / ``fedchain approve``: admitting and removing members after founding.

The contract decides; these commands only sign a member's proposal or approval with its own key
and say where the tally stands, so a coordinator never has to hand-craft a transaction.
"""

from __future__ import annotations

import hashlib
import math
import re
from datetime import UTC, datetime
from pathlib import Path

from fedchain.errors import ConfigError
from peer.keystore import load_eth_account
from peer.ledger.client import FederationClient, connect
from peer.ledger.types import ProposalInfo, ProposalKind

_ADDRESS = re.compile(r"^0x[0-9a-fA-F]{40}$")
_KEY = re.compile(r"^[0-9a-fA-F]{64}$")
ZERO_DIGEST = bytes(32)


def _client(rpc_url: str, contract: str, keystore: Path, password: str) -> FederationClient:
    if not _ADDRESS.fullmatch(contract):
        raise ConfigError(f"--contract {contract!r} is not a 0x-prefixed 20-byte address")
    return FederationClient(connect(rpc_url), contract, load_eth_account(keystore, password))


def parse_public_key(text: str, where: str) -> bytes:
    """A 32-byte X25519 public key from hex (``0x`` optional), or one ConfigError line."""
    body = text[2:] if text.startswith("0x") else text
    if not _KEY.fullmatch(body) or int(body, 16) == 0:
        raise ConfigError(
            f"{where} {text!r} is not an X25519 public key: 64 hex digits, not all zero, as "
            "`fedchain init` printed it"
        )
    return bytes.fromhex(body)


def metadata_digest(path: Path | None) -> bytes:
    """sha2-256 of the institution's metadata document (zero when there is none)."""
    if path is None:
        return ZERO_DIGEST
    try:
        return hashlib.sha256(path.read_bytes()).digest()
    except OSError as exc:
        raise ConfigError(f"--metadata {path} cannot be read ({exc.strerror})") from None


def propose(
    rpc_url: str,
    contract: str,
    keystore: Path,
    password: str,
    *,
    kind: ProposalKind,
    account: str,
    peer_id: str = "",
    metadata: Path | None = None,
    encryption_key: str = "",
) -> tuple[ProposalInfo, int]:
    """Propose to admit or remove ``account`` (the proposer's approval counts at once).

    Returns the proposal and the approval threshold in basis points.
    """
    if not _ADDRESS.fullmatch(account):
        raise ConfigError(f"--account {account!r} is not a 0x-prefixed 20-byte address")
    if kind is ProposalKind.ADMIT and not peer_id:
        raise ConfigError("--peer-id is required to admit: the newcomer's libp2p peer ID")
    key = parse_public_key(encryption_key, "--encryption-key") if encryption_key else ZERO_DIGEST
    client = _client(rpc_url, contract, keystore, password)
    proposal_id = client.propose(kind, account, peer_id, metadata_digest(metadata), key)
    return client.proposal(proposal_id), client.approval_bps()


def approve(
    rpc_url: str, contract: str, keystore: Path, password: str, proposal_id: int
) -> tuple[ProposalInfo, int]:
    """Add this member's approval to ``proposal_id``; the proposal and the threshold (bps)."""
    client = _client(rpc_url, contract, keystore, password)
    client.approve(proposal_id)
    return client.proposal(proposal_id), client.approval_bps()


def approvals_needed(info: ProposalInfo, approval_bps: int) -> int:
    """Approvals that execute the proposal: approvals * 10000 >= bps * members when proposed."""
    return math.ceil(approval_bps * info.member_count_at_proposal / 10_000)


def describe(info: ProposalInfo, approval_bps: int) -> str:
    """One line: what the proposal does and where its tally stands."""
    what = "admit" if info.kind is ProposalKind.ADMIT else "remove"
    who = f"{info.account} (peer {info.peer_id})" if info.peer_id else info.account
    needed = approvals_needed(info, approval_bps)
    tally = f"{info.approvals} of {needed} approvals"
    if info.executed:
        return f"proposal {info.proposal_id}: {what} {who}: {tally}; executed"
    expires = datetime.fromtimestamp(info.expires_at, UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"proposal {info.proposal_id}: {what} {who}: {tally}; the other members approve with "
        f"`fedchain approve {info.proposal_id}` before {expires}"
    )
