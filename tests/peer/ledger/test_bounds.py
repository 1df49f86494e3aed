"""What one dishonest member cannot do, on every ledger backend: claim unbounded samples, or
finalize a round with a minority (at creation, or after the federation grew mid-task)."""

from __future__ import annotations

import pytest

from peer.ledger import errors as E
from peer.ledger.events import RoundFinalized, TaskCreated
from peer.ledger.types import ProposalKind, RoundStatus
from tests.peer.ledger.conftest import HOUR, Backend, Fed, make_fed


def test_samples_above_the_cap_are_refused_and_the_cap_itself_accepted(fed: Fed) -> None:
    a, b, _ = fed.members
    task = fed.new_task(max_samples=500)
    assert a.last_result is not None
    assert a.last_result.event(TaskCreated).max_samples == 500
    assert a.task(task).max_samples == 500
    with pytest.raises(E.SamplesAboveCap) as exc:
        a.submit_update(task, 1, fed.update_cid(task, 1, 0), 501)
    assert exc.value.args_by_name == {"given": 501, "cap": 500}
    with pytest.raises(E.SamplesAboveCap):
        a.submit_update(task, 1, fed.update_cid(task, 1, 0), 2**64 - 1)
    assert a.submission_of(task, 1, a.account.address) == (bytes(32), 0), "nothing recorded"
    a.submit_update(task, 1, fed.update_cid(task, 1, 0), 500)
    b.submit_update(task, 1, fed.update_cid(task, 1, 1), 1)
    assert [s.num_samples for s in a.submissions(task, 1)] == [500, 1]


def test_quorum_must_be_a_strict_majority(chain: Backend) -> None:
    fed = make_fed(chain, n_members=4)
    with pytest.raises(E.QuorumNotMajority) as exc:
        fed.new_task(quorum=2)
    assert exc.value.args_by_name == {"quorum": 2, "members": 4}
    assert "more than half" in str(exc.value)
    assert fed.members[0].task_count() == 0
    task = fed.new_task(quorum=3)
    assert fed.members[0].task(task).quorum == 3
    assert fed.members[0].round_info(task, 1).need == 3


def test_members_admitted_mid_task_raise_the_next_rounds_need(fed: Fed) -> None:
    """3 members, quorum 2; two more join during round 1, so round 2 needs 3 of 5."""
    a, b, c = fed.members
    task = fed.new_task(quorum=2)
    assert a.round_info(task, 1).need == 2
    newcomers = [fed.client(acct) for acct in fed.outsiders[:2]]
    for i, newcomer in enumerate(newcomers):
        pid = a.propose(ProposalKind.ADMIT, newcomer.account.address, f"12D3KooWJoiner{i}")
        for approver in (b, c):
            if not a.proposal(pid).executed:
                approver.approve(pid)
    assert a.member_count() == 5
    fed.submit(task, 1, [0, 1, 2])
    fed.attest(task, 1, [0, 1], [0, 1, 2])  # round 1 opened with 3 members: 2 finalize it
    assert a.round_info(task, 1).status is RoundStatus.FINALIZED
    info = a.round_info(task, 2)
    assert (info.eligible, info.need) == (5, 3)

    # Two of five (the old quorum) can neither close round 2 nor keep it from failing.
    fed.submit(task, 2, [0, 1])
    fed.chain.time_advance(HOUR + 1)
    with pytest.raises(E.QuorumNotReached) as short:
        a.close_updates(task, 2)
    assert short.value.args_by_name == {"have": 2, "need": 3}
    a.fail_round(task, 2)

    # Round 3: three submit; two agreeing attestations do not finalize, the third does.
    fed.submit(task, 3, [0, 1])
    newcomers[0].submit_update(task, 3, fed.update_cid(task, 3, 9), 10)
    fed.chain.time_advance(HOUR + 1)
    a.close_updates(task, 3)
    root = fed.tree(task, 3, [0, 1]).root
    fed.attest(task, 3, [0, 1], [0, 1])
    assert a.round_info(task, 3).status is RoundStatus.CLOSED, "a minority finalized a round"
    final = newcomers[0].attest_aggregate(task, 3, fed.aggregate_cid(task, 3), root)
    assert final.event(RoundFinalized).attestations == 3
    assert a.round_info(task, 3).status is RoundStatus.FINALIZED


def test_epsilon_is_committed_with_each_update_and_never_decreases(fed: Fed) -> None:
    """Differential privacy: each submission commits the member's epsilon so far; the count of
    updates and the latest figure are readable by anyone, and a lower figure is refused."""
    a, b, _ = fed.members
    task = fed.new_task()
    me = a.account.address
    assert a.privacy_spent_of(task, me) == (0, 0)
    a.submit_update(task, 1, fed.update_cid(task, 1, 0), 10, 1_250)
    assert b.privacy_spent_of(task, me) == (1, 1_250)
    fed.submit(task, 1, [1, 2])
    fed.attest(task, 1, [0, 1, 2], [0, 1, 2])
    with pytest.raises(E.EpsilonDecreased) as exc:
        a.submit_update(task, 2, fed.update_cid(task, 2, 0), 10, 1_249)
    assert exc.value.args_by_name == {"given": 1_249, "recorded": 1_250}
    assert "only grows" in str(exc.value)
    assert a.privacy_spent_of(task, me) == (1, 1_250), "nothing recorded"
    assert a.submission_of(task, 2, me) == (bytes(32), 0)
    a.submit_update(task, 2, fed.update_cid(task, 2, 0), 10, 1_800)
    assert a.privacy_spent_of(task, me) == (2, 1_800)
    assert a.privacy_spent_of(fed.new_task(), me) == (0, 0), "counted per task"
