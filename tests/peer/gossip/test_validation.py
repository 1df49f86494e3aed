"""AnnouncementValidator: every reason to refuse, and how often it asks the membership view.

The view here is a membership table that counts the questions it is asked (the
chain itself is exercised in ``test_validation_chain.py``).
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from peer.announcements import Domain, RejectedAnnouncement, RejectReason, sign_update
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from peer.gossip.validation import AnnouncementValidator, BlockCachedMembership

REVEAL_ONLY = (RejectReason.WRONG_ROUND, RejectReason.NOT_SUBMITTER, RejectReason.REVEALS_SUBMITTER)
"""Refusals of reveal announcements only: test_reveal_validation.py covers them."""
CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
DOMAIN = Domain(chain_id=31337, contract="0x" + "11" * 20)
TASK = 7


class CountingMembership:
    """A membership table that records every question, with a block number set by the test."""

    def __init__(self, peer_ids: dict[str, str]) -> None:
        self.peer_ids = {a.lower(): p for a, p in peer_ids.items()}
        self.block = 100
        self.lookups: list[str] = []
        self.block_reads = 0
        self.failing = False

    def is_member(self, address: str) -> bool:
        self._ask(f"is_member {address.lower()}")
        return address.lower() in self.peer_ids

    def peer_id_of(self, address: str) -> str:
        self._ask(f"peer_id_of {address.lower()}")
        return self.peer_ids.get(address.lower(), "")

    def block_number(self) -> int:
        self.block_reads += 1
        return self.block

    def _ask(self, question: str) -> None:
        if self.failing:
            raise ConnectionError("chain RPC refused the connection")
        self.lookups.append(question)


@pytest.fixture
def member() -> LocalAccount:
    return Account.create()


@pytest.fixture
def member_peer() -> str:
    return peer_id_from_seed(generate_ed25519_seed())


@pytest.fixture
def view(member: LocalAccount, member_peer: str) -> CountingMembership:
    return CountingMembership({member.address: member_peer})


def signed(
    account: LocalAccount, domain: Domain = DOMAIN, task: int = TASK, round_no: int = 1
) -> bytes:
    ann = sign_update(account, domain, task_id=task, round_no=round_no, cid=CID, num_samples=5)
    return ann.to_bytes()


def test_a_members_announcement_from_its_registered_peer_is_returned_parsed(
    member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view, block_refresh_seconds=0)
    ann = validator(member_peer, signed(member, round_no=3))
    assert (ann.member, ann.task_id, ann.round, ann.cid) == (member.address, TASK, 3, CID)


def bad_inputs(member: LocalAccount, member_peer: str) -> dict[RejectReason, tuple[str, bytes]]:
    outsider = Account.create()
    forged = json.loads(signed(outsider))
    forged["member"] = member.address
    other_peer = peer_id_from_seed(generate_ed25519_seed())
    return {
        RejectReason.TOO_LARGE: (member_peer, b"{" + b" " * 5000 + b"}"),
        RejectReason.MALFORMED: (member_peer, b'{"kind":"update","task_id":"x"}'),
        RejectReason.BAD_SIGNATURE: (member_peer, json.dumps(forged).encode()),
        RejectReason.WRONG_TASK: (member_peer, signed(member, task=TASK + 1)),
        RejectReason.NON_MEMBER: (member_peer, signed(outsider)),
        RejectReason.WRONG_PEER_ID: (other_peer, signed(member)),
    }


@pytest.mark.parametrize(
    "reason",
    [r for r in RejectReason if r not in (RejectReason.LOOKUP_FAILED, *REVEAL_ONLY)],
)
def test_each_kind_of_bad_announcement_is_refused_with_its_reason(
    reason: RejectReason, member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view)
    sender, data = bad_inputs(member, member_peer)[reason]
    with pytest.raises(RejectedAnnouncement) as refused:
        validator(sender, data)
    assert refused.value.reason is reason
    # Control: the same validator accepts a good one, so the refusal is about the input.
    assert validator(member_peer, signed(member)).member == member.address


@pytest.mark.parametrize(
    "other_domain",
    [
        Domain(chain_id=1, contract=DOMAIN.contract),
        Domain(chain_id=31337, contract="0x" + "22" * 20),
    ],
)
def test_a_signature_for_another_chain_or_contract_is_refused_as_a_bad_signature(
    other_domain: Domain, member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view)
    with pytest.raises(RejectedAnnouncement, match="was signed by") as refused:
        validator(member_peer, signed(member, other_domain))
    assert refused.value.reason is RejectReason.BAD_SIGNATURE


def test_membership_is_asked_once_per_address_per_block(
    member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view, block_refresh_seconds=0)
    outsider = Account.create()
    for round_no in range(1, 21):
        validator(member_peer, signed(member, round_no=round_no))
        with pytest.raises(RejectedAnnouncement):
            validator(member_peer, signed(outsider, round_no=round_no))
    me, them = member.address.lower(), outsider.address.lower()
    assert view.lookups == [f"is_member {me}", f"peer_id_of {me}", f"is_member {them}"]

    view.block += 1  # a new block may change membership: ask again, once
    for round_no in range(1, 6):
        validator(member_peer, signed(member, round_no=round_no))
    assert view.lookups[3:] == [f"is_member {me}", f"peer_id_of {me}"]


def test_a_removed_member_is_refused_from_the_next_block_on(
    member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view, block_refresh_seconds=0)
    validator(member_peer, signed(member))
    view.peer_ids.clear()  # governance removed the member ...
    validator(member_peer, signed(member, round_no=2))  # ... same block: cached answer
    view.block += 1
    with pytest.raises(RejectedAnnouncement) as refused:
        validator(member_peer, signed(member, round_no=3))
    assert refused.value.reason is RejectReason.NON_MEMBER


def test_a_known_non_member_or_wrong_host_is_refused_before_the_signature_is_checked(
    member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view)
    outsider = Account.create()
    other_peer = peer_id_from_seed(generate_ed25519_seed())
    with pytest.raises(RejectedAnnouncement):  # the first time, looked up and cached
        validator(member_peer, signed(outsider))
    validator(member_peer, signed(member))
    garbage_signature = "0x" + "ab" * 65
    repeats = {
        RejectReason.NON_MEMBER: (member_peer, outsider),
        RejectReason.WRONG_PEER_ID: (other_peer, member),
    }
    for reason, (sender, account) in repeats.items():
        ann = json.loads(signed(account))
        ann["signature"] = garbage_signature
        with pytest.raises(RejectedAnnouncement) as refused:
            validator(sender, json.dumps(ann).encode())
        # A signature check would have said "bad signature": the cache answered first.
        assert refused.value.reason is reason
    # From the member's own host, the same garbage signature is checked and refused.
    ann = json.loads(signed(member))
    ann["signature"] = garbage_signature
    with pytest.raises(RejectedAnnouncement) as refused:
        validator(member_peer, json.dumps(ann).encode())
    assert refused.value.reason is RejectReason.BAD_SIGNATURE


def test_block_number_is_read_at_most_once_per_refresh_interval(
    member: LocalAccount, view: CountingMembership
) -> None:
    now = [1000.0]
    cache = BlockCachedMembership(view, block_refresh_seconds=1.0, clock=lambda: now[0])
    for _ in range(50):
        cache.registration(member.address)
    assert view.block_reads == 1
    now[0] += 1.0
    cache.registration(member.address)
    assert view.block_reads == 2


def test_a_failing_membership_service_refuses_instead_of_crashing(
    member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    validator = AnnouncementValidator(DOMAIN, TASK, view, block_refresh_seconds=0)
    view.failing = True
    with pytest.raises(RejectedAnnouncement, match="refused the connection") as refused:
        validator(member_peer, signed(member))
    assert refused.value.reason is RejectReason.LOOKUP_FAILED
    view.failing = False  # the service is back: the same member passes again
    assert validator(member_peer, signed(member)).member == member.address


def test_validator_throughput(
    member: LocalAccount, member_peer: str, view: CountingMembership
) -> None:
    """Measures messages/s (printed, not asserted); checks every verdict is right."""
    validator = AnnouncementValidator(DOMAIN, TASK, view)
    count = 200
    valid = [signed(member, round_no=i + 1) for i in range(count)]
    kinds: dict[str, list[tuple[str, bytes]]] = {
        "valid": [(member_peer, data) for data in valid],
        **{
            str(reason): [bad_inputs(member, member_peer)[reason]] * count
            for reason in (
                RejectReason.MALFORMED,
                RejectReason.BAD_SIGNATURE,
                RejectReason.NON_MEMBER,
                RejectReason.WRONG_PEER_ID,
            )
        },
    }
    rates: dict[str, float] = {}
    for kind, inputs in kinds.items():
        verdicts: list[Any] = []
        started = time.perf_counter()
        for sender, data in inputs:
            try:
                verdicts.append(validator(sender, data).round)
            except RejectedAnnouncement as refused:
                verdicts.append(refused.reason)
        rates[kind] = count / (time.perf_counter() - started)
        expected = list(range(1, count + 1)) if kind == "valid" else [RejectReason(kind)] * count
        assert verdicts == expected
    print("\nvalidator throughput: " + ", ".join(f"{k} {r:,.0f}/s" for k, r in rates.items()))
