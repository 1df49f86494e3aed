"""Reveal announcements (secure aggregation): signed, bounded, and checked against the round's
closed update set by the gossip validator before anything is delivered or relayed.

The membership and closed-set views are tables here; the peer processes of
tests/e2e/test_secure_aggregation.py run the same validator against the chain.
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from consensus.secagg.rounds import Reveal
from peer.announcements import (
    MAX_REVEALED_SEEDS,
    RejectedAnnouncement,
    RejectReason,
    RevealAnnouncement,
    parse_gossip,
    sign_reveal,
)
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from peer.gossip.validation import AnnouncementValidator
from tests.peer.gossip.test_validation import DOMAIN, TASK, CountingMembership, signed

ROUND = 4


class ClosedSets:
    """Round -> the lower-case addresses that submitted, for rounds whose set is closed."""

    def __init__(self, closed: dict[int, frozenset[str]]) -> None:
        self.closed = closed
        self.asked: list[int] = []

    def closed_set(self, task_id: int, round_no: int) -> frozenset[str] | None:
        assert task_id == TASK
        self.asked.append(round_no)
        return self.closed.get(round_no)


@pytest.fixture
def accounts() -> dict[str, LocalAccount]:
    return {n: Account.create() for n in ("a", "b", "c", "dropped", "outsider")}


@pytest.fixture
def peers(accounts: dict[str, LocalAccount]) -> dict[str, str]:
    return {n: peer_id_from_seed(generate_ed25519_seed()) for n in accounts}


def addr(account: LocalAccount) -> str:
    return account.address.lower()


class World(NamedTuple):
    """Members a, b, c submitted in ROUND (closed); "dropped" is a member that did not."""

    check: AnnouncementValidator
    closed: ClosedSets
    accounts: dict[str, LocalAccount]
    peers: dict[str, str]


@pytest.fixture
def world(accounts: dict[str, LocalAccount], peers: dict[str, str]) -> World:
    members = {accounts[n].address: peers[n] for n in ("a", "b", "c", "dropped")}
    closed = ClosedSets({ROUND: frozenset(addr(accounts[n]) for n in ("a", "b", "c"))})
    check = AnnouncementValidator(DOMAIN, TASK, CountingMembership(members), closed_sets=closed)
    return World(check, closed, accounts, peers)


def reveal(
    account: LocalAccount, *targets: LocalAccount, round_no: int = ROUND, task: int = TASK
) -> bytes:
    reveals = [Reveal(addr(account), addr(t), bytes([k + 1]) * 32) for k, t in enumerate(targets)]
    return sign_reveal(account, DOMAIN, task_id=task, round_no=round_no, reveals=reveals).to_bytes()


def test_a_submitters_reveal_of_its_seed_with_a_dropped_member_is_returned_parsed(
    world: World,
) -> None:
    check, _, accounts, peers = world
    ann = check(peers["a"], reveal(accounts["a"], accounts["dropped"]))
    assert isinstance(ann, RevealAnnouncement)
    assert ann.reveals() == [Reveal(addr(accounts["a"]), addr(accounts["dropped"]), b"\x01" * 32)]
    # Update announcements still pass the same validator.
    assert check(peers["b"], signed(accounts["b"])).member == accounts["b"].address


def refusals(
    accounts: dict[str, LocalAccount], peers: dict[str, str]
) -> dict[str, tuple[RejectReason, str, bytes]]:
    a, dropped = accounts["a"], accounts["dropped"]
    good = json.loads(reveal(a, dropped))
    tampered = {**good, "seeds": {addr(dropped): "ee" * 32}}
    short_seed = {**good, "seeds": {addr(dropped): "ee" * 31}}
    mixed_case = {**good, "seeds": {dropped.address: "ee" * 32}}
    too_many = {**good, "seeds": {f"0x{k:040x}": "ee" * 32 for k in range(MAX_REVEALED_SEEDS + 1)}}
    return {
        "garbage": (RejectReason.MALFORMED, peers["a"], b'{"kind":"reveal","seeds":[]}'),
        "short seed": (RejectReason.MALFORMED, peers["a"], json.dumps(short_seed).encode()),
        "not lower case": (RejectReason.MALFORMED, peers["a"], json.dumps(mixed_case).encode()),
        "too many seeds": (RejectReason.MALFORMED, peers["a"], json.dumps(too_many).encode()),
        "no seeds": (
            RejectReason.MALFORMED,
            peers["a"],
            json.dumps({**good, "seeds": {}}).encode(),
        ),
        "too large": (
            RejectReason.TOO_LARGE,
            peers["a"],
            b'{"kind":"reveal"' + b" " * 60_000 + b"}",
        ),
        "tampered seed": (RejectReason.BAD_SIGNATURE, peers["a"], json.dumps(tampered).encode()),
        "other task": (RejectReason.WRONG_TASK, peers["a"], reveal(a, dropped, task=TASK + 1)),
        "round not closed": (RejectReason.WRONG_ROUND, peers["a"], reveal(a, dropped, round_no=5)),
        "non-member": (
            RejectReason.NON_MEMBER,
            peers["outsider"],
            reveal(accounts["outsider"], dropped),
        ),
        "other host": (RejectReason.WRONG_PEER_ID, peers["b"], reveal(a, dropped)),
        "did not submit": (
            RejectReason.NOT_SUBMITTER,
            peers["dropped"],
            reveal(dropped, accounts["a"]),
        ),
        "seed with a submitter": (
            RejectReason.REVEALS_SUBMITTER,
            peers["a"],
            reveal(a, dropped, accounts["b"]),
        ),
    }


CASES = [
    "garbage",
    "short seed",
    "not lower case",
    "too many seeds",
    "no seeds",
    "too large",
    "tampered seed",
    "other task",
    "round not closed",
    "non-member",
    "other host",
    "did not submit",
    "seed with a submitter",
]


@pytest.mark.parametrize("case", CASES)
def test_each_bad_reveal_is_refused_with_its_reason(
    case: str,
    world: World,
) -> None:
    check, _, accounts, peers = world
    reason, sender, data = refusals(accounts, peers)[case]
    with pytest.raises(RejectedAnnouncement) as refused:
        check(sender, data)
    assert refused.value.reason is reason, refused.value
    # Control: the same validator takes a good reveal, so the refusal is about the input.
    assert check(peers["c"], reveal(accounts["c"], accounts["dropped"])) is not None


def test_the_closed_set_is_read_once_per_round_and_answers_repeats_before_the_signature(
    world: World,
) -> None:
    check, closed, accounts, peers = world
    for name in ("a", "b", "c"):
        check(peers[name], reveal(accounts[name], accounts["dropped"]))
    assert closed.asked == [ROUND]
    # A repeated reveal of a submitter's seed is refused from the cached set, even with a
    # garbage signature: the cheap check runs first.
    bad = json.loads(reveal(accounts["a"], accounts["b"]))
    bad["signature"] = "0x" + "ab" * 65
    with pytest.raises(RejectedAnnouncement) as refused:
        check(peers["a"], json.dumps(bad).encode())
    assert refused.value.reason is RejectReason.REVEALS_SUBMITTER


def test_a_validator_without_a_closed_set_view_refuses_every_reveal(
    accounts: dict[str, LocalAccount], peers: dict[str, str]
) -> None:
    view = CountingMembership({accounts["a"].address: peers["a"]})
    check = AnnouncementValidator(DOMAIN, TASK, view)
    with pytest.raises(RejectedAnnouncement) as refused:
        check(peers["a"], reveal(accounts["a"], accounts["dropped"]))
    assert refused.value.reason is RejectReason.WRONG_ROUND


def test_a_failing_closed_set_lookup_refuses_instead_of_crashing(
    accounts: dict[str, LocalAccount], peers: dict[str, str]
) -> None:
    class Down:
        def closed_set(self, task_id: int, round_no: int) -> frozenset[str] | None:
            raise ConnectionError("chain RPC refused the connection")

    view = CountingMembership({accounts["a"].address: peers["a"]})
    check = AnnouncementValidator(DOMAIN, TASK, view, closed_sets=Down())
    with pytest.raises(RejectedAnnouncement, match="refused the connection") as refused:
        check(peers["a"], reveal(accounts["a"], accounts["dropped"]))
    assert refused.value.reason is RejectReason.LOOKUP_FAILED


def test_a_member_signs_only_its_own_reveals_and_parsing_round_trips(
    accounts: dict[str, LocalAccount],
) -> None:
    a, b, dropped = accounts["a"], accounts["b"], accounts["dropped"]
    with pytest.raises(ValueError, match="own reveals"):
        sign_reveal(
            a,
            DOMAIN,
            task_id=TASK,
            round_no=ROUND,
            reveals=[Reveal(addr(b), addr(dropped), b"\x01" * 32)],
        )
    ann = parse_gossip(reveal(a, dropped), DOMAIN)
    assert isinstance(ann, RevealAnnouncement) and ann.signer(DOMAIN) == a.address
