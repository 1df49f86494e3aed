"""Check an announcement completely before the gossip layer delivers or relays it.

py-libp2p relays whatever its topic validator accepts, so every check the node
relies on (shape, signature, domain, task, membership, registered peer ID) runs
here, inside the validator: a forged or foreign message stops at the first
honest peer instead of reaching every member.

Membership comes from the chain, so lookups are cached per block: at most one
lookup per address per block, and the block number itself is re-read at most
once per ``block_refresh_seconds`` (a flood must not turn into one RPC per
message).

A reveal announcement (secure aggregation) is also checked against the round's closed
update set S, read from the chain once the round is closed (S never changes after that): its
sender must be in S and every seed it reveals must be with a member outside S.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from peer.announcements import (
    Announcement,
    Domain,
    RejectedAnnouncement,
    RejectReason,
    RevealAnnouncement,
    check_signature,
    parse_gossip,
)
from peer.ledger.types import RoundStatus

if TYPE_CHECKING:
    from peer.ledger.abc import FederationLedger

# A flood of fresh non-member keys must not grow the cache without bound.
MAX_CACHED_ADDRESSES = 10_000
MAX_CACHED_ROUNDS = 64


class MembershipView(Protocol):
    """What the validator needs to know about the federation (the chain, in production)."""

    def is_member(self, address: str) -> bool: ...

    def peer_id_of(self, address: str) -> str: ...

    def block_number(self) -> int: ...


class ClosedSetView(Protocol):
    """The closed update sets of a task's rounds (the chain, in production)."""

    def closed_set(self, task_id: int, round_no: int) -> frozenset[str] | None:
        """Lower-case addresses that submitted in the round if its update set is closed and it
        waits for attestations; None otherwise (still collecting, or ended)."""
        ...


@dataclass(frozen=True)
class _Registration:
    is_member: bool
    peer_id: str


class BlockCachedMembership:
    """A MembershipView's answers, cached until the chain moves to a new block; thread-safe."""

    def __init__(
        self,
        view: MembershipView,
        *,
        block_refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._view = view
        self._block_refresh_seconds = block_refresh_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._block: int | None = None
        self._block_read_at = 0.0
        self._registrations: dict[str, _Registration] = {}

    def registration(self, address: str) -> _Registration:
        """Membership and registered peer ID of ``address`` as of the current block."""
        key = address.lower()
        with self._lock:
            self._refresh_block()
            cached = self._registrations.get(key)
            if cached is not None:
                return cached
            is_member = self._view.is_member(address)
            peer_id = self._view.peer_id_of(address) if is_member else ""
            if len(self._registrations) >= MAX_CACHED_ADDRESSES:
                self._registrations.clear()
            found = self._registrations[key] = _Registration(is_member, peer_id)
            return found

    def known(self, address: str) -> _Registration | None:
        """The cached registration of ``address`` if the cache is current; never asks the view."""
        with self._lock:
            if self._block is None:
                return None
            if self._clock() - self._block_read_at >= self._block_refresh_seconds:
                return None
            return self._registrations.get(address.lower())

    def _refresh_block(self) -> None:
        now = self._clock()
        if self._block is not None and now - self._block_read_at < self._block_refresh_seconds:
            return
        block = self._view.block_number()
        self._block_read_at = now
        if block != self._block:
            self._block = block
            self._registrations.clear()


class AnnouncementValidator:
    """Callable gossip validator: ``(sender peer ID, data) -> Announcement`` (parsed).

    Raises :class:`RejectedAnnouncement` (a ProtocolError) naming the reason, so
    the gossip layer can neither deliver nor relay the message and can count it.
    Without ``closed_sets`` every reveal announcement is refused.
    """

    def __init__(
        self,
        domain: Domain,
        task_id: int,
        membership: MembershipView,
        *,
        block_refresh_seconds: float = 1.0,
        closed_sets: ClosedSetView | None = None,
    ) -> None:
        self._domain = domain
        self._task_id = task_id
        self._membership = BlockCachedMembership(
            membership, block_refresh_seconds=block_refresh_seconds
        )
        self._closed_sets = closed_sets
        self._closed: dict[int, frozenset[str]] = {}
        self._closed_lock = threading.Lock()

    def __call__(self, sender_peer_id: str, data: bytes) -> Announcement:
        ann = parse_gossip(data, self._domain, verify=False)
        if ann.task_id != self._task_id:
            raise RejectedAnnouncement(
                RejectReason.WRONG_TASK,
                f"announcement is for task {ann.task_id}, this topic carries task {self._task_id}",
            )
        # Cheap checks first: a repeated non-member or wrong-host sender is refused from
        # the cache, without the signature check that costs most of the time.
        known = self._membership.known(ann.member)
        if known is not None:
            _check_registration(ann, known, sender_peer_id)
        if isinstance(ann, RevealAnnouncement):
            with self._closed_lock:
                closed = self._closed.get(ann.round)
            if closed is not None:
                _check_reveal(ann, closed)
        check_signature(ann, self._domain)
        try:
            registration = self._membership.registration(ann.member)
        except Exception as exc:  # web3, requests or FedchainError: the service failed
            # The chain is the truth and gossip only a hint: when the chain cannot be
            # asked, refuse rather than relay something unchecked.
            raise RejectedAnnouncement(
                RejectReason.LOOKUP_FAILED, f"cannot check membership of {ann.member}: {exc}"
            ) from None
        _check_registration(ann, registration, sender_peer_id)
        if isinstance(ann, RevealAnnouncement):
            _check_reveal(ann, self._closed_set(ann.round))
        return ann

    def _closed_set(self, round_no: int) -> frozenset[str]:
        """The closed update set of ``round_no``, cached once read (it never changes)."""
        with self._closed_lock:
            cached = self._closed.get(round_no)
        if cached is not None:
            return cached
        if self._closed_sets is None:
            raise RejectedAnnouncement(
                RejectReason.WRONG_ROUND, "this peer takes no reveals (no closed-set view)"
            )
        try:
            closed = self._closed_sets.closed_set(self._task_id, round_no)
        except Exception as exc:  # as for membership: refuse what cannot be checked
            raise RejectedAnnouncement(
                RejectReason.LOOKUP_FAILED, f"cannot read the closed set of round {round_no}: {exc}"
            ) from None
        if closed is None:
            raise RejectedAnnouncement(
                RejectReason.WRONG_ROUND,
                f"round {round_no} of task {self._task_id} is not waiting for reveals "
                "(its update set is not closed, or the round has ended)",
            )
        with self._closed_lock:
            if len(self._closed) >= MAX_CACHED_ROUNDS:
                self._closed.clear()
            self._closed[round_no] = closed
        return closed


def _check_reveal(ann: RevealAnnouncement, closed: frozenset[str]) -> None:
    """Only a submitter reveals, and only its seeds with members that did not submit."""
    if ann.member.lower() not in closed:
        raise RejectedAnnouncement(
            RejectReason.NOT_SUBMITTER,
            f"reveal from {ann.member}, which is not in the closed update set of round {ann.round}",
        )
    submitters = sorted(set(ann.seeds) & closed)
    if submitters:
        raise RejectedAnnouncement(
            RejectReason.REVEALS_SUBMITTER,
            f"reveal by {ann.member} of its seeds with {', '.join(submitters)}, which submitted "
            f"in round {ann.round}: that would expose their updates",
        )


def _check_registration(
    ann: Announcement, registration: _Registration, sender_peer_id: str
) -> None:
    if not registration.is_member:
        raise RejectedAnnouncement(
            RejectReason.NON_MEMBER, f"announcement from non-member {ann.member}"
        )
    if registration.peer_id != sender_peer_id:
        raise RejectedAnnouncement(
            RejectReason.WRONG_PEER_ID,
            f"announcement for {ann.member} came from peer {sender_peer_id}, "
            f"not the peer ID registered on-chain ({registration.peer_id})",
        )


class ChainMembership:
    """The production MembershipView: the federation contract, read through a ledger client.

    The validator calls it from a gossip worker thread; give it a client of its
    own (its own Web3 connection) rather than the node loop's.
    """

    def __init__(self, ledger: FederationLedger) -> None:
        self._ledger = ledger

    def is_member(self, address: str) -> bool:
        return self._ledger.is_member(address)

    def peer_id_of(self, address: str) -> str:
        return self._ledger.peer_id_of(address)

    def block_number(self) -> int:
        return self._ledger.block_number()

    def closed_set(self, task_id: int, round_no: int) -> frozenset[str] | None:
        if RoundStatus(self._ledger.round_info(task_id, round_no).status) is not RoundStatus.CLOSED:
            return None
        return frozenset(s.member.lower() for s in self._ledger.submissions(task_id, round_no))
