"""Founders, governance votes and their effect on who may take part, on every ledger backend."""

from __future__ import annotations

import pytest
from eth_account import Account

from peer.ledger import errors as E
from peer.ledger.events import MemberAdmitted, MemberRemoved, ProposalApproved, ProposalCreated
from peer.ledger.types import ProposalKind, RoundStatus
from tests.peer.ledger.conftest import Backend, Fed

WEEK = 7 * 24 * 3600


def test_deploy_registers_the_founders(fed: Fed) -> None:
    d = fed.deployer
    addrs = [m.account.address for m in fed.members]
    assert sorted(d.members()) == sorted(addrs)
    assert d.member_count() == 3 and d.approval_bps() == 5001
    for addr, pid in zip(addrs, fed.peer_ids, strict=True):
        assert d.is_member(addr) and d.peer_id_of(addr) == pid
        assert d.member_by_peer_id(pid) == addr
    assert not d.is_member(d.account.address), "the deployer gets no membership"
    assert d.member_by_peer_id("12D3KooWNobody") is None
    admitted = d.events(MemberAdmitted)
    assert [(e.account, e.peer_id, e.proposal_id) for e in admitted] == [
        (a, p, 0) for a, p in zip(addrs, fed.peer_ids, strict=True)
    ]
    assert d.chain_id == fed.chain.chain_id


@pytest.mark.parametrize(
    ("founders", "peer_ids", "bps", "error", "reason"),
    [
        ([1, 2], ["p1", "p2"], 0, E.InvalidConfig, "approvalBps"),
        ([1, 2], ["p1", "p2"], 10_001, E.InvalidConfig, "approvalBps"),
        ([], [], 5001, E.InvalidConfig, "at least one founder"),
        ([1, 2], ["p1"], 5001, E.InvalidConfig, "differ in length"),
        ([1, 1], ["p1", "p2"], 5001, E.AlreadyMember, None),
        ([1, 2], ["p1", "p1"], 5001, E.PeerIdTaken, None),
        ([1, 2], ["p1", ""], 5001, E.InvalidConfig, "peer ID"),
        ([1, 0], ["p1", "p2"], 5001, E.InvalidConfig, "zero"),
    ],
)
def test_constructor_refuses_bad_founders(
    chain: Backend,
    founders: list[int],
    peer_ids: list[str],
    bps: int,
    error: type[E.ContractRevert],
    reason: str | None,
) -> None:
    deployer = Account.from_key(chain.dev_private_keys(1)[0])
    addrs = [
        "0x" + "00" * 20 if i == 0 else Account.from_key(i.to_bytes(32, "big")).address
        for i in founders
    ]
    with pytest.raises(error) as exc:
        chain.deploy(deployer, addrs, peer_ids, bps)
    if reason is not None:
        assert reason in exc.value.args_by_name["reason"]


def test_admit_by_majority_then_eligible_from_the_next_round(fed: Fed) -> None:
    a, b, c = fed.members
    newcomer = fed.client(fed.outsiders[0])
    task = fed.new_task(quorum=3)
    pid = a.propose(ProposalKind.ADMIT, newcomer.account.address, "12D3KooWNewcomer", b"\x11" * 32)
    created = a.last_result
    assert created is not None
    ev = created.event(ProposalCreated)
    assert (ev.proposal_id, ev.proposer, ev.kind, ev.account, ev.peer_id) == (
        pid,
        a.account.address,
        0,
        newcomer.account.address,
        "12D3KooWNewcomer",
    )
    assert created.event(ProposalApproved).approvals == 1
    p = a.proposal(pid)
    assert (p.approvals, p.member_count_at_proposal, p.executed) == (1, 3, False)
    assert a.has_approved(pid, a.account.address) and not a.has_approved(pid, b.account.address)
    with pytest.raises(E.AlreadyApproved):
        a.approve(pid)
    with pytest.raises(E.NotMember):
        newcomer.approve(pid)
    done = b.approve(pid)
    admitted = done.event(MemberAdmitted)
    assert (admitted.account, admitted.peer_id, admitted.metadata_digest, admitted.proposal_id) == (
        newcomer.account.address,
        "12D3KooWNewcomer",
        b"\x11" * 32,
        pid,
    )
    assert a.proposal(pid).executed and a.is_member(newcomer.account.address)
    with pytest.raises(E.ProposalClosed):
        c.approve(pid)
    with pytest.raises(E.UnknownProposal):
        c.approve(pid + 1)
    with pytest.raises(E.AlreadyMember):
        c.propose(ProposalKind.ADMIT, newcomer.account.address, "12D3KooWOther")
    with pytest.raises(E.PeerIdTaken):
        c.propose(ProposalKind.ADMIT, fed.outsiders[1].address, "12D3KooWNewcomer")

    # Round 1 opened before the admission: the newcomer waits for round 2.
    with pytest.raises(E.NotEligible) as exc:
        newcomer.submit_update(task, 1, fed.update_cid(task, 1, 9), 10)
    assert exc.value.args_by_name == {"account": newcomer.account.address, "round": 1}
    fed.run_round(task, 1)
    assert a.round_info(task, 2).eligible == 4
    newcomer.submit_update(task, 2, fed.update_cid(task, 2, 9), 10)
    assert a.submission_of(task, 2, newcomer.account.address)[1] == 10


def test_removed_member_can_no_longer_act(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [2])
    with pytest.raises(E.NotMember):
        a.propose(ProposalKind.REMOVE, fed.outsiders[0].address)
    pid = a.propose(ProposalKind.REMOVE, c.account.address)
    assert a.is_member(c.account.address)
    removed = b.approve(pid).event(MemberRemoved)
    assert (removed.account, removed.proposal_id) == (c.account.address, pid)
    assert not a.is_member(c.account.address)
    assert sorted(a.members()) == sorted([a.account.address, b.account.address])
    assert a.peer_id_of(c.account.address) == "" and a.member_by_peer_id(fed.peer_ids[2]) is None
    root = fed.tree(task, 1, [0, 1]).root
    for action in (
        lambda: c.submit_update(task, 1, fed.update_cid(task, 1, 2), 5),
        lambda: c.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), root),
        lambda: c.propose(ProposalKind.ADMIT, fed.outsiders[0].address, "12D3KooWX"),
        lambda: c.approve(pid),
        lambda: c.close_updates(task, 1),
        lambda: c.create_task(b"", b"", 2, 1, 1, 1, 1),
    ):
        with pytest.raises(E.NotMember):
            action()
    # The remaining two finish the round; the removed member's earlier update stays on record.
    fed.submit(task, 1, [0])
    fed.chain.time_advance(3601)
    a.close_updates(task, 1)
    fed.attest(task, 1, [0, 1], [0, 2])
    assert a.round_info(task, 1).status is RoundStatus.FINALIZED
    assert [s.member for s in a.submissions(task, 1)] == [c.account.address, a.account.address]
    assert a.round_info(task, 2).eligible == 2
    # The last member cannot be removed.
    pid2 = a.propose(ProposalKind.REMOVE, b.account.address)
    b.approve(pid2)
    with pytest.raises(E.InvalidConfig) as exc:
        a.propose(ProposalKind.REMOVE, a.account.address)
    assert "last member" in exc.value.args_by_name["reason"]


def test_proposals_expire(fed: Fed) -> None:
    a, b, _ = fed.members
    pid = a.propose(ProposalKind.ADMIT, fed.outsiders[0].address, "12D3KooWLate")
    fed.chain.time_advance(WEEK + 1)
    with pytest.raises(E.ProposalClosed):
        b.approve(pid)
    assert not a.is_member(fed.outsiders[0].address)
    with pytest.raises(E.InvalidConfig):
        a.propose(2, fed.outsiders[0].address, "12D3KooWLate")  # type: ignore[arg-type]
