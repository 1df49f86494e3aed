"""Signed gossip announcements: "member M pinned update CID for round r of task t".

Gossip is only a hint that lets peers prefetch updates early; the chain stays the
truth.  Still, every announcement is signed with the member's Ethereum key as
EIP-712 typed data whose domain binds the chain id and contract address, so a
message cannot be replayed on another federation, chain or task, and receivers
check the signer against on-chain membership before acting on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedchain.errors import ProtocolError
from peer.content.cid import Cid

MAX_ANNOUNCEMENT_BYTES = 4096


class RejectReason(StrEnum):
    """Why an announcement was refused; the gossip counters group rejections by it."""

    TOO_LARGE = "too large"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad signature"  # includes a signature made for another chain/contract
    WRONG_TASK = "wrong task"
    NON_MEMBER = "non-member"
    WRONG_PEER_ID = "wrong peer ID"
    LOOKUP_FAILED = "membership lookup failed"


class RejectedAnnouncement(ProtocolError):
    """An announcement that must be neither acted on nor relayed; ``reason`` says why."""

    def __init__(self, reason: RejectReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


_TYPES = {
    "UpdateAnnouncement": [
        {"name": "taskId", "type": "uint256"},
        {"name": "round", "type": "uint32"},
        {"name": "cid", "type": "bytes"},
        {"name": "numSamples", "type": "uint64"},
        {"name": "member", "type": "address"},
    ]
}


@dataclass(frozen=True)
class Domain:
    chain_id: int
    contract: str

    def as_eip712(self) -> dict[str, Any]:
        return {
            "name": "fedchain",
            "version": "1",
            "chainId": self.chain_id,
            "verifyingContract": self.contract,
        }


class UpdateAnnouncement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(pattern=r"^update$")
    task_id: int = Field(ge=1, lt=2**256)
    round: int = Field(ge=1, lt=2**32)
    cid: str = Field(min_length=8, max_length=128)
    num_samples: int = Field(ge=1, lt=2**64)
    member: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    def _typed(self, domain: Domain) -> dict[str, Any]:
        return {
            "taskId": self.task_id,
            "round": self.round,
            "cid": Cid.parse(self.cid).binary,
            "numSamples": self.num_samples,
            "member": self.member,
        }

    def signer(self, domain: Domain) -> str:
        """The address that signed this announcement for ``domain``."""
        msg = encode_typed_data(domain.as_eip712(), _TYPES, self._typed(domain))
        return str(Account.recover_message(msg, signature=bytes.fromhex(self.signature[2:])))

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(), separators=(",", ":"), sort_keys=True).encode()


def sign_update(
    account: LocalAccount,
    domain: Domain,
    *,
    task_id: int,
    round_no: int,
    cid: str,
    num_samples: int,
) -> UpdateAnnouncement:
    unsigned = {
        "taskId": task_id,
        "round": round_no,
        "cid": Cid.parse(cid).binary,
        "numSamples": num_samples,
        "member": account.address,
    }
    signed = account.sign_message(encode_typed_data(domain.as_eip712(), _TYPES, unsigned))
    return UpdateAnnouncement(
        kind="update",
        task_id=task_id,
        round=round_no,
        cid=cid,
        num_samples=num_samples,
        member=account.address,
        signature="0x" + bytes(signed.signature).hex(),
    )


def parse_announcement(data: bytes, domain: Domain, *, verify: bool = True) -> UpdateAnnouncement:
    """Parse untrusted bytes and check the signature; raise RejectedAnnouncement if wrong.

    ``verify=False`` only parses, for callers that run cheaper checks first and
    call :func:`check_signature` themselves.
    """
    if len(data) > MAX_ANNOUNCEMENT_BYTES:
        raise RejectedAnnouncement(
            RejectReason.TOO_LARGE,
            f"announcement of {len(data)} bytes exceeds {MAX_ANNOUNCEMENT_BYTES}",
        )
    try:
        ann = UpdateAnnouncement.model_validate(json.loads(data))
        Cid.parse(ann.cid)
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise RejectedAnnouncement(
            RejectReason.MALFORMED, f"malformed announcement: {str(exc).splitlines()[0]}"
        ) from None
    if verify:
        check_signature(ann, domain)
    return ann


def check_signature(ann: UpdateAnnouncement, domain: Domain) -> None:
    """Raise RejectedAnnouncement unless ``ann.member`` signed ``ann`` for ``domain``."""
    try:
        signer = ann.signer(domain)
    except Exception as exc:  # eth_account raises several types on bad signatures
        raise RejectedAnnouncement(
            RejectReason.BAD_SIGNATURE, f"announcement signature cannot be checked: {exc}"
        ) from None
    if signer.lower() != ann.member.lower():
        raise RejectedAnnouncement(
            RejectReason.BAD_SIGNATURE, f"announcement for {ann.member} was signed by {signer}"
        )
