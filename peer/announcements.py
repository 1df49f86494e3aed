"""Signed gossip announcements: "member M pinned update CID for round r of task t", and, for
securely aggregated rounds, "member M reveals its pair seeds with the members that did not
submit in round r of task t" (:class:`RevealAnnouncement`).

Gossip is only a hint that lets peers prefetch updates early; the chain stays the
truth.  Still, every announcement is signed with the member's Ethereum key as
EIP-712 typed data whose domain binds the chain id and contract address, so a
message cannot be replayed on another federation, chain or task, and receivers
check the signer against on-chain membership before acting on it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from eth_account import Account
from eth_account.messages import SignableMessage, encode_typed_data
from eth_account.signers.local import LocalAccount
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from consensus.secagg.masks import SEED_BYTES
from consensus.secagg.rounds import Reveal
from consensus.secagg.wire import reveals_to_bytes
from fedchain.errors import ProtocolError
from peer.content.cid import Cid

MAX_ANNOUNCEMENT_BYTES = 4096
MAX_REVEALED_SEEDS = 256
"""Seeds one reveal announcement may carry: one per expected member that did not submit."""
MAX_REVEAL_ANNOUNCEMENT_BYTES = 48 * 1024
"""Bounds a reveal announcement (~110 bytes a seed): inline, under gossip's 64 KiB message cap."""


class RejectReason(StrEnum):
    """Why an announcement was refused; the gossip counters group rejections by it."""

    TOO_LARGE = "too large"
    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad signature"  # includes a signature made for another chain/contract
    WRONG_TASK = "wrong task"
    NON_MEMBER = "non-member"
    WRONG_PEER_ID = "wrong peer ID"
    LOOKUP_FAILED = "membership lookup failed"
    WRONG_ROUND = "wrong round"  # a reveal for a round that is not waiting for reveals
    NOT_SUBMITTER = "not in the closed set"  # a reveal from a member that did not submit
    REVEALS_SUBMITTER = "reveals a submitter's seed"  # would strip a used update's mask


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
_REVEAL_TYPES = {  # a type set of its own: one primary type per signed message
    "RevealAnnouncement": [
        {"name": "taskId", "type": "uint256"},
        {"name": "round", "type": "uint32"},
        {"name": "member", "type": "address"},
        {"name": "reveals", "type": "bytes"},
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
    _check_size(data, MAX_ANNOUNCEMENT_BYTES)
    try:
        ann = UpdateAnnouncement.model_validate(json.loads(data))
        Cid.parse(ann.cid)
    except (ValidationError, json.JSONDecodeError, UnicodeDecodeError, ValueError) as exc:
        raise _malformed("announcement", exc) from None
    if verify:
        check_signature(ann, domain)
    return ann


def check_signature(ann: UpdateAnnouncement | RevealAnnouncement, domain: Domain) -> None:
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


_LOWER_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


class RevealAnnouncement(BaseModel):
    """A submitter's pair seeds with the expected members that did not submit, inline.

    Inline rather than a CID on IPFS: the seeds are 32 bytes each, so the message stays small
    and bounded (:data:`MAX_REVEALED_SEEDS`), needs no fetch or fetch timeout, and the gossip
    validator can check every seed's target against the closed set before relaying it.  What is
    signed is the canonical reveal of :func:`consensus.secagg.wire.reveals_to_bytes`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: str = Field(pattern=r"^reveal$")
    task_id: int = Field(ge=1, lt=2**256)
    round: int = Field(ge=1, lt=2**32)
    member: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    seeds: dict[str, str] = Field(min_length=1, max_length=MAX_REVEALED_SEEDS)
    """Address of a member that did not submit (lower case) -> the pair seed, hex."""
    signature: str = Field(pattern=r"^0x[0-9a-fA-F]{130}$")

    @field_validator("seeds")
    @classmethod
    def _seeds_well_formed(cls, seeds: dict[str, str]) -> dict[str, str]:
        for dropped, seed in seeds.items():
            if not _LOWER_ADDRESS.fullmatch(dropped):
                raise ValueError(f"{dropped!r} is not a lower-case address")
            if not re.fullmatch(rf"[0-9a-f]{{{2 * SEED_BYTES}}}", seed):
                raise ValueError(f"the seed for {dropped} is not {SEED_BYTES} bytes of hex")
        return seeds

    def reveals(self) -> list[Reveal]:
        return [
            Reveal(self.member.lower(), d, bytes.fromhex(s)) for d, s in sorted(self.seeds.items())
        ]

    def signer(self, domain: Domain) -> str:
        """The address that signed this announcement for ``domain``."""
        msg = _reveal_message(domain, self.task_id, self.round, self.member, self.reveals())
        return str(Account.recover_message(msg, signature=bytes.fromhex(self.signature[2:])))

    def to_bytes(self) -> bytes:
        return json.dumps(self.model_dump(), separators=(",", ":"), sort_keys=True).encode()


Announcement = UpdateAnnouncement | RevealAnnouncement


def _reveal_message(
    domain: Domain, task_id: int, round_no: int, member: str, reveals: list[Reveal]
) -> SignableMessage:
    typed = {
        "taskId": task_id,
        "round": round_no,
        "member": member,
        "reveals": reveals_to_bytes(task_id, round_no, member, reveals),
    }
    return encode_typed_data(domain.as_eip712(), _REVEAL_TYPES, typed)


def sign_reveal(
    account: LocalAccount, domain: Domain, *, task_id: int, round_no: int, reveals: list[Reveal]
) -> RevealAnnouncement:
    """This member's reveals of ``round_no``, signed; ValueError if one is not its own."""
    if any(r.revealer.lower() != account.address.lower() for r in reveals):
        raise ValueError("a member announces only its own reveals")
    signed = account.sign_message(
        _reveal_message(domain, task_id, round_no, account.address, reveals)
    )
    return RevealAnnouncement(
        kind="reveal",
        task_id=task_id,
        round=round_no,
        member=account.address,
        seeds={r.dropped.lower(): r.seed.hex() for r in reveals},
        signature="0x" + bytes(signed.signature).hex(),
    )


def parse_gossip(data: bytes, domain: Domain, *, verify: bool = True) -> Announcement:
    """Parse any announcement kind from untrusted bytes (bounded per kind); like
    :func:`parse_announcement`, RejectedAnnouncement if it is wrong."""
    _check_size(data, MAX_REVEAL_ANNOUNCEMENT_BYTES)
    try:
        body: Any = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _malformed("announcement", exc) from None
    if not isinstance(body, dict) or body.get("kind") != "reveal":
        return parse_announcement(data, domain, verify=verify)
    try:
        ann = RevealAnnouncement.model_validate(body)
    except (ValidationError, ValueError) as exc:
        raise _malformed("reveal announcement", exc) from None
    if verify:
        check_signature(ann, domain)
    return ann


def _check_size(data: bytes, limit: int) -> None:
    if len(data) > limit:
        raise RejectedAnnouncement(
            RejectReason.TOO_LARGE, f"announcement of {len(data)} bytes exceeds {limit}"
        )


def _malformed(what: str, exc: Exception) -> RejectedAnnouncement:
    return RejectedAnnouncement(
        RejectReason.MALFORMED, f"malformed {what}: {str(exc).splitlines()[0]}"
    )
