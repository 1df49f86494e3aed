"""Members-only content of one task: who may read a round's objects, and sealing them.

The recipients of everything a round produces (its updates and its aggregate) are the members
of the federation at the moment the round opened, each under the X25519 key registered for it
at that moment, plus the federation's audit key.  They are read from the chain's events (the
``RoundOpened`` event's position among ``MemberAdmitted``, ``MemberRemoved`` and
``EncryptionKeySet``), never from gossip, so every peer and the auditor derive the same ordered
list.  A member removed before a round opened is not among its recipients and cannot read
anything of that round or later.

A member admitted while a round runs is eligible in the next round but not a recipient of the
aggregate it starts from; it joins the round after (its node says why it does not train).
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Protocol

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError, ProtocolError
from peer.confidential.envelope import (
    MAX_RECIPIENTS,
    open_envelope,
    overhead,
    public_key_of,
    seal,
    seal_deterministic,
)
from peer.content.abc import ContentStore
from peer.content.cid import cid_from_bytes
from peer.ledger.abc import ZERO32, FederationLedger
from peer.ledger.events import EncryptionKeySet, MemberAdmitted, MemberRemoved, RoundOpened
from peer.updates import ContentFetcher


class ContentSeal(Protocol):
    """What the node does to content between the codec and the content store."""

    overhead: int
    """Most bytes sealing adds to an object (for fetch limits)."""

    def seal_update(self, round_no: int, data: bytes) -> bytes: ...

    def seal_aggregate(self, round_no: int, data: bytes) -> bytes: ...

    def open(self, data: bytes) -> bytes: ...

    def is_public(self, cid: str) -> bool:
        """Whether ``cid`` is content every reader may see unsealed."""
        ...


class PlainContent:
    """No sealing: the content store holds the codec's bytes (``confidentiality = "none"``)."""

    overhead = 0

    def seal_update(self, round_no: int, data: bytes) -> bytes:
        return data

    def seal_aggregate(self, round_no: int, data: bytes) -> bytes:
        return data

    def open(self, data: bytes) -> bytes:
        return data

    def is_public(self, cid: str) -> bool:
        return True


def round_member_keys(
    ledger: FederationLedger, task_id: int, round_no: int, purpose: str
) -> dict[str, bytes]:
    """Each member at the opening of ``round_no`` (lower-case address) -> its X25519 key then.

    ProtocolError if the round has not opened or a member has no key (``purpose`` says what
    the keys were needed for).
    """
    opened = ledger.events(RoundOpened, task_id, round_no)
    if not opened:
        raise ProtocolError(f"round {round_no} of task {task_id} has not opened on the chain")
    at = (opened[0].block_number, opened[0].log_index)
    keys: dict[str, bytes] = {}
    for ev in ledger.logs([MemberAdmitted, MemberRemoved, EncryptionKeySet]):
        if (ev.block_number, ev.log_index) >= at:
            break
        if isinstance(ev, MemberAdmitted):
            keys[ev.account.lower()] = ZERO32
        elif isinstance(ev, MemberRemoved):
            keys.pop(ev.account.lower(), None)
        elif isinstance(ev, EncryptionKeySet) and ev.account.lower() in keys:
            keys[ev.account.lower()] = ev.key
    keyless = sorted(a for a, k in keys.items() if k == ZERO32)
    if keyless:
        raise ProtocolError(
            f"round {round_no}: members {', '.join(keyless)} have no encryption key on the "
            f"chain, so {purpose}"
        )
    return keys


def recipients_of_round(ledger: FederationLedger, task_id: int, round_no: int) -> list[bytes]:
    """Members' keys at the opening of ``round_no`` (ordered by key), then the audit key."""
    keys = round_member_keys(
        ledger, task_id, round_no, "members-only content cannot be sealed to them"
    )
    audit = ledger.audit_key()
    if audit == ZERO32:
        raise ConfigError(
            f"task {task_id} is members-only but the federation at {ledger.address} has no audit "
            "key: deploy it with the founders' encryption keys and an audit key"
        )
    return [*sorted(keys.values()), audit]


class MembersOnly:
    """Seals a task's content to each round's recipients; opens it with one secret key
    (a member's, or the auditor's with the audit key)."""

    overhead = overhead(MAX_RECIPIENTS)

    def __init__(self, ledger: FederationLedger, task_id: int, secret: bytes | None) -> None:
        self.ledger = ledger
        self.task_id = task_id
        self._secret = secret
        self._recipients: dict[int, list[bytes]] = {}
        self._initial_cid: str | None = None

    @property
    def public_key(self) -> bytes | None:
        return None if self._secret is None else public_key_of(self._secret)

    def recipients(self, round_no: int) -> list[bytes]:
        if round_no not in self._recipients:
            self._recipients[round_no] = recipients_of_round(self.ledger, self.task_id, round_no)
        return self._recipients[round_no]

    def _context(self, round_no: int) -> bytes:
        where = f"{self.ledger.chain_id}/{self.ledger.address.lower()}/{self.task_id}/{round_no}"
        return b"fedchain aggregate\0" + where.encode()

    def seal_update(self, round_no: int, data: bytes) -> bytes:
        return seal(data, self.recipients(round_no))

    def seal_aggregate(self, round_no: int, data: bytes) -> bytes:
        """Deterministic: every peer with the same aggregate publishes the same bytes."""
        return seal_deterministic(data, self.recipients(round_no), self._context(round_no))

    def is_public(self, cid: str) -> bool:
        """Only the task's initial model: its creator publishes it in the clear before any
        round opens, and it holds no member's data."""
        if self._initial_cid is None:
            created = self.ledger.task_created(self.task_id)
            self._initial_cid = cid_from_bytes(created.initial_model_cid)
        return cid == self._initial_cid

    def open(self, data: bytes) -> bytes:
        if self._secret is None:
            raise ConfigError(
                "this task is members-only: its updates and aggregates open only with a member's "
                "X25519 key (keys.encryption_keystore, made by `fedchain init`) or the "
                "federation's audit key (`fedchain replay --audit-key`)"
            )
        return open_envelope(data, self._secret)


def content_seal(
    spec: TaskSpec, ledger: FederationLedger, task_id: int, secret: bytes | None
) -> ContentSeal:
    """The sealing the task's spec agreed (``confidentiality``)."""
    if spec.confidentiality == "members":
        return MembersOnly(ledger, task_id, secret)
    return PlainContent()


class SealedFetcher(ContentFetcher):
    """A :class:`ContentFetcher` that opens what it verified: the CID names the sealed bytes,
    callers get the content; limits are the content's, the envelope's overhead added here."""

    def __init__(
        self,
        store: ContentStore,
        seal_: ContentSeal,
        *,
        timeout: float,
        max_bytes: int,
        executor: Executor | None = None,
    ) -> None:
        super().__init__(
            store, timeout=timeout, max_bytes=max_bytes + seal_.overhead, executor=executor
        )
        self.seal = seal_
        self._opened: dict[str, bytes] = {}
        """Content already opened, by CID: a global model is read several times a round."""

    def prefetch(self, cid: str, *, max_bytes: int | None = None) -> None:
        limit = None if max_bytes is None else max_bytes + self.seal.overhead
        super().prefetch(cid, max_bytes=limit)

    def fetch_verified(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        opened = self._opened.get(cid)
        if opened is not None:
            return opened
        # the base class fetches through self.prefetch, which adds the overhead
        data = super().fetch_verified(cid, max_bytes=max_bytes)
        if not self.seal.is_public(cid):
            data = self.seal.open(data)
        self._opened[cid] = data
        return data

    def forget(self, cid: str) -> None:
        self._opened.pop(cid, None)
        super().forget(cid)

    def clear(self) -> None:
        self._opened.clear()
        super().clear()


def sealed_fetcher(
    store: ContentStore,
    seal_: ContentSeal,
    *,
    timeout: float,
    max_bytes: int,
    executor: Executor | None = None,
) -> ContentFetcher:
    """The fetcher for a task: a plain one unless its content is sealed."""
    if isinstance(seal_, PlainContent):
        return ContentFetcher(store, timeout=timeout, max_bytes=max_bytes, executor=executor)
    return SealedFetcher(store, seal_, timeout=timeout, max_bytes=max_bytes, executor=executor)
