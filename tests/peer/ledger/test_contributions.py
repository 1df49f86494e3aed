"""Contribution claims against the agreed scores root, and dissent records, on every backend."""

from __future__ import annotations

import pytest

from peer.ledger import errors as E
from peer.ledger.events import ContributionClaimed, DissentRecorded
from tests.peer.ledger.conftest import HOUR, Fed


def test_merkle_claims_credit_once_per_round(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task()
    everyone = [0, 1, 2]
    fed.submit(task, 1, everyone)
    tree = fed.tree(task, 1, everyone)
    with pytest.raises(E.RoundNotFinalized):
        a.claim_contribution(task, 1, 100, tree.proof(0))
    fed.attest(task, 1, everyone, everyone)

    with pytest.raises(E.InvalidProof):
        a.claim_contribution(task, 1, 101, tree.proof(0))  # someone else's score
    with pytest.raises(E.InvalidProof):
        a.claim_contribution(task, 1, 100, tree.proof(1))  # someone else's proof
    with pytest.raises(E.InvalidProof):
        b.claim_contribution(task, 1, 100, tree.proof(0))  # a's leaf claimed by b
    with pytest.raises(E.InvalidProof):
        a.claim_contribution(task, 1, 100, [])
    with pytest.raises(E.NotMember):
        fed.client(fed.outsiders[0]).claim_contribution(task, 1, 100, tree.proof(0))
    with pytest.raises(E.UnknownTask):
        a.claim_contribution(task + 5, 1, 100, tree.proof(0))

    for i, member in enumerate(fed.members):
        ev = member.claim_contribution(task, 1, 100 + i, tree.proof(i)).event(ContributionClaimed)
        assert (ev.task_id, ev.round, ev.member, ev.score) == (
            task,
            1,
            member.account.address,
            100 + i,
        )
        assert member.has_claimed(task, 1, member.account.address)
    with pytest.raises(E.AlreadyClaimed):
        a.claim_contribution(task, 1, 100, tree.proof(0))

    # A second round adds to the same cumulative contribution and credit.
    fed.submit(task, 2, everyone)
    fed.attest(task, 2, everyone, [0, 2])  # the agreed scores leave b out this time
    tree2 = fed.tree(task, 2, [0, 2])
    c.claim_contribution(task, 2, 102, tree2.proof(1))
    assert c.contribution_of(c.account.address) == 204 == c.credit_of(c.account.address)
    assert a.credit_of(a.account.address) == 100
    assert a.credit_of(b.account.address) == 101
    assert not a.has_claimed(task, 2, a.account.address)
    # Leaves bind task and round: round 2's proof does not open another task's round.
    other = fed.new_task()
    fed.run_round(other, 1)
    with pytest.raises(E.InvalidProof):
        c.claim_contribution(other, 1, 102, tree2.proof(1))
    with pytest.raises(E.InvalidProof):
        c.claim_contribution(other, 1, 102, fed.tree(task, 1, everyone).proof(2))


def test_a_failed_round_pays_no_credit(fed: Fed) -> None:
    a = fed.members[0]
    task = fed.new_task(quorum=3)
    fed.submit(task, 1, [0])
    fed.chain.time_advance(HOUR + 1)
    a.fail_round(task, 1)
    with pytest.raises(E.RoundNotFinalized):
        a.claim_contribution(task, 1, 100, fed.tree(task, 1, [0]).proof(0))


def test_dissent_before_finalization_is_reported_by_anyone(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0, 1, 2])
    root = fed.tree(task, 1, [0, 1, 2]).root
    bad = fed.aggregate_cid(task, 1, "tampered")
    a.attest_aggregate(task, 1, bad, root)
    assert a.attestation_of(task, 1, a.account.address) == (bad[4:], root)
    with pytest.raises(E.RoundNotFinalized):
        b.report_dissent(task, 1, a.account.address)
    b.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), root)
    c.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), root)
    assert c.attestation_of(task, 1, c.account.address) == (fed.aggregate_cid(task, 1)[4:], root)

    observer = fed.client(fed.outsiders[0])
    assert not observer.dissent_reported(task, 1, a.account.address)
    ev = observer.report_dissent(task, 1, a.account.address).event(DissentRecorded)
    assert observer.dissent_reported(task, 1, a.account.address)
    assert not observer.dissent_reported(task, 1, b.account.address)
    assert (ev.member, ev.aggregate_digest, ev.scores_digest) == (a.account.address, bad[4:], root)
    with pytest.raises(E.DissentAlreadyReported):
        observer.report_dissent(task, 1, a.account.address)
    with pytest.raises(E.NoDissent):
        observer.report_dissent(task, 1, b.account.address)
    with pytest.raises(E.NoDissent):
        observer.report_dissent(task, 1, c.account.address)  # the finalizing attestation
    with pytest.raises(E.NotAttested):
        observer.report_dissent(task, 1, fed.outsiders[1].address)
    assert [e.member for e in a.events(DissentRecorded, task, 1)] == [a.account.address]


def test_late_attestations_are_compared_with_the_agreed_pair(fed: Fed) -> None:
    a, _, c = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0, 1, 2])
    root = fed.tree(task, 1, [0, 1, 2]).root
    fed.attest(task, 1, [0, 1], [0, 1, 2])
    late = c.attest_aggregate(task, 1, fed.aggregate_cid(task, 1, "late and wrong"), root)
    ev = late.event(DissentRecorded)
    assert (ev.member, ev.aggregate_digest) == (
        c.account.address,
        fed.aggregate_cid(task, 1, "late and wrong")[4:],
    )
    assert a.dissent_reported(task, 1, c.account.address), "a late dissent is on record at once"
    with pytest.raises(E.DissentAlreadyReported):
        a.report_dissent(task, 1, c.account.address)
    with pytest.raises(E.AlreadyAttested):
        c.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), root)

    task2 = fed.new_task(quorum=2)
    fed.submit(task2, 1, [0, 1, 2])
    fed.attest(task2, 1, [0, 1], [0, 1, 2])
    agreeing = c.attest_aggregate(
        task2, 1, fed.aggregate_cid(task2, 1), fed.tree(task2, 1, [0, 1, 2]).root
    )
    assert not agreeing.events_of(DissentRecorded)


def test_dissent_must_be_reported_while_storage_holds_it(fed: Fed) -> None:
    a, b, _ = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0, 1, 2])
    root = fed.tree(task, 1, [0, 1, 2]).root
    a.attest_aggregate(task, 1, fed.aggregate_cid(task, 1, "wrong"), root)
    fed.attest(task, 1, [1, 2], [0, 1, 2])
    fed.run_round(task, 2)
    with pytest.raises(E.DissentWindowClosed) as exc:
        b.report_dissent(task, 1, a.account.address)
    assert exc.value.args_by_name == {"round": 1}
    # The attestation itself stays in the logs.
    assert [x.member for x in a.attestations(task, 1)] == [m.account.address for m in fed.members]
