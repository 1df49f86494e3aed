"""Tasks and rounds through the real contract on every ledger backend: happy path and refusals."""

from __future__ import annotations

import pytest

from peer.ledger import errors as E
from peer.ledger.events import (
    AggregateAttested,
    RoundFailed,
    RoundFinalized,
    RoundOpened,
    TaskCompleted,
    TaskCreated,
    UpdatesClosed,
    UpdateSubmitted,
)
from peer.ledger.types import RoundStatus, TaskStatus
from tests.peer.ledger.conftest import HOUR, MAX_SAMPLES, Fed, cid_of


def test_full_round_closes_finalizes_and_opens_the_next(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task(rounds=2)
    created = a.last_result
    assert created is not None
    tc = created.event(TaskCreated)
    assert (tc.task_id, tc.creator, tc.quorum, tc.num_rounds, tc.max_samples) == (
        task,
        a.account.address,
        3,
        2,
        MAX_SAMPLES,
    )
    assert tc.spec_cid == cid_of(b"spec") and tc.spec_digest == cid_of(b"spec")[4:]
    opened = created.event(RoundOpened)
    assert (opened.round, opened.model_digest, opened.eligible) == (
        1,
        cid_of(b"initial model")[4:],
        3,
    )

    info = a.round_info(task, 1)
    assert info.status is RoundStatus.COLLECTING
    assert info.model_digest == cid_of(b"initial model")[4:]
    assert info.attest_deadline - info.submit_deadline == HOUR
    assert (info.eligible, info.need, info.submissions) == (3, 3, 0)

    r1 = a.submit_update(task, 1, fed.update_cid(task, 1, 0), 100)
    ev = r1.event(UpdateSubmitted)
    assert (ev.task_id, ev.round, ev.member, ev.num_samples, ev.index) == (
        task,
        1,
        a.account.address,
        100,
        0,
    )
    assert ev.cid == fed.update_cid(task, 1, 0) and ev.digest == ev.cid[4:]
    assert not r1.events_of(UpdatesClosed)
    b.submit_update(task, 1, fed.update_cid(task, 1, 1), 101)
    last = c.submit_update(task, 1, fed.update_cid(task, 1, 2), 102)
    closed = last.event(UpdatesClosed)
    assert (closed.round, closed.submissions) == (1, 3)
    assert a.round_info(task, 1).status is RoundStatus.CLOSED

    subs = a.submissions(task, 1)
    assert [s.member for s in subs] == [m.account.address for m in fed.members]
    assert [s.num_samples for s in subs] == [100, 101, 102]
    assert all(s.digest == s.cid[4:] for s in subs)
    assert a.submission_of(task, 1, b.account.address) == (fed.update_cid(task, 1, 1)[4:], 101)

    root = fed.tree(task, 1, [0, 1, 2]).root
    agg = fed.aggregate_cid(task, 1)
    first = a.attest_aggregate(task, 1, agg, root)
    att = first.event(AggregateAttested)
    assert (att.member, att.aggregate_digest, att.scores_digest) == (
        a.account.address,
        agg[4:],
        root,
    )
    b.attest_aggregate(task, 1, agg, root)
    assert a.round_info(task, 1).status is RoundStatus.CLOSED
    final = c.attest_aggregate(task, 1, agg, root)
    fin = final.event(RoundFinalized)
    assert (
        fin.round,
        fin.aggregate_digest,
        fin.aggregate_cid,
        fin.scores_digest,
        fin.attestations,
    ) == (
        1,
        agg[4:],
        agg,
        root,
        3,
    )
    nxt = final.event(RoundOpened)
    assert (nxt.round, nxt.model_digest) == (2, agg[4:])

    done = a.round_info(task, 1)
    assert done.status is RoundStatus.FINALIZED
    assert (done.aggregate_digest, done.scores_digest) == (agg[4:], root)
    assert done.model_digest == cid_of(b"initial model")[4:]
    assert (done.submissions, done.eligible) == (3, 3)
    assert done.finalized_block == final.block_number
    t = a.task(task)
    assert (t.current_round, t.last_finalized_round, t.finalized_rounds) == (2, 1, 1)
    assert t.global_model_digest == agg[4:] and t.status is TaskStatus.ACTIVE
    assert a.round_info(task, 2).model_digest == agg[4:]
    assert a.model_cid(task, agg[4:]) == a.model_cid(task, t.global_model_digest)
    assert a.attestations(task, 1)[2].member == c.account.address
    assert a.finalized_event(task, 1).tx_hash == final.tx_hash

    fed.run_round(task, 2)
    t = a.task(task)
    assert t.completed and (t.current_round, t.finalized_rounds) == (2, 2)
    completed = a.events(TaskCompleted, task)
    assert [(e.last_round, e.finalized_rounds) for e in completed] == [(2, 2)]
    info2 = a.round_info(task, 2)
    assert info2.status is RoundStatus.FINALIZED and info2.model_digest == agg[4:]
    with pytest.raises(E.TaskFinished):
        a.submit_update(task, 2, fed.update_cid(task, 2, 9), 1)


def test_close_by_deadline_with_quorum(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0, 1])
    with pytest.raises(E.DeadlineNotPassed):
        a.close_updates(task, 1)
    with pytest.raises(E.UpdatesNotClosed):
        a.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), fed.tree(task, 1, [0, 1]).root)
    fed.chain.time_advance(HOUR + 1)
    with pytest.raises(E.SubmissionDeadlinePassed) as late:
        c.submit_update(task, 1, fed.update_cid(task, 1, 2), 5)
    assert late.value.args_by_name["deadline"] == a.round_info(task, 1).submit_deadline
    closed = c.close_updates(task, 1).event(UpdatesClosed)
    assert closed.submissions == 2
    with pytest.raises(E.RoundNotCollecting):
        b.close_updates(task, 1)
    fed.attest(task, 1, [0, 1], [0, 1])
    assert a.round_info(task, 1).status is RoundStatus.FINALIZED
    assert a.task(task).current_round == 2


def test_close_without_quorum_is_refused_and_the_round_fails(fed: Fed) -> None:
    a, b, _ = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0])
    with pytest.raises(E.DeadlineNotPassed):
        a.fail_round(task, 1)
    fed.chain.time_advance(HOUR + 1)
    with pytest.raises(E.QuorumNotReached) as exc:
        a.close_updates(task, 1)
    assert exc.value.args_by_name == {"have": 1, "need": 2}
    failed = b.fail_round(task, 1)
    ev = failed.event(RoundFailed)
    assert (ev.round, ev.status_before, ev.submissions) == (1, int(RoundStatus.COLLECTING), 1)
    opened = failed.event(RoundOpened)
    assert (opened.round, opened.model_digest) == (2, cid_of(b"initial model")[4:])
    assert a.round_info(task, 1).status is RoundStatus.FAILED
    t = a.task(task)
    assert (t.current_round, t.last_finalized_round, t.finalized_rounds) == (2, 0, 0)
    with pytest.raises(E.WrongRound):
        a.submit_update(task, 1, fed.update_cid(task, 1, 0), 1)
    fed.run_round(task, 2)
    assert a.task(task).finalized_rounds == 1


def test_fail_round_rules(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0, 1])
    fed.chain.time_advance(HOUR + 1)
    with pytest.raises(E.QuorumAlreadyReached) as exc:
        a.fail_round(task, 1)
    assert exc.value.args_by_name == {"have": 2, "need": 2}
    a.close_updates(task, 1)
    with pytest.raises(E.DeadlineNotPassed):
        a.fail_round(task, 1)
    a.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), fed.tree(task, 1, [0, 1]).root)
    fed.chain.time_advance(HOUR + 1)
    with pytest.raises(E.AttestDeadlinePassed):
        b.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), fed.tree(task, 1, [0, 1]).root)
    ev = c.fail_round(task, 1).event(RoundFailed)
    assert ev.status_before == int(RoundStatus.CLOSED)
    with pytest.raises(E.WrongRound):
        c.fail_round(task, 1)
    # A task whose last round finalized cannot have it failed.
    done = fed.new_task(rounds=1)
    fed.run_round(done, 1)
    with pytest.raises(E.RoundAlreadyFinalized):
        a.fail_round(done, 1)


def test_submit_refusals(fed: Fed) -> None:
    a, b, _ = fed.members
    task = fed.new_task()
    outsider = fed.client(fed.outsiders[0])
    with pytest.raises(E.NotMember) as exc:
        outsider.submit_update(task, 1, fed.update_cid(task, 1, 9), 10)
    assert exc.value.args_by_name["account"] == outsider.account.address
    with pytest.raises(E.UnknownTask) as unknown:
        a.submit_update(task + 1, 1, fed.update_cid(task, 1, 0), 10)
    assert unknown.value.args_by_name["taskId"] == task + 1
    with pytest.raises(E.WrongRound) as wrong:
        a.submit_update(task, 2, fed.update_cid(task, 2, 0), 10)
    assert wrong.value.args_by_name == {"expected": 1, "given": 2}
    with pytest.raises(E.ZeroSamples):
        a.submit_update(task, 1, fed.update_cid(task, 1, 0), 0)
    for bad in (
        b"\x01\x55\x12\x20" + bytes(31),  # digest too short
        b"\x01\x71\x12\x20" + bytes(32),  # dag-cbor codec
        b"\x01\x55\x13\x20" + bytes(32),  # sha2-512 code
        b"\x12\x20" + bytes(32),  # CIDv0 multihash
        b"",
    ):
        with pytest.raises(E.InvalidCid):
            a.submit_update(task, 1, bad, 10)
    a.submit_update(task, 1, cid_of(b"dag-pb update", codec=0x70), 10)
    with pytest.raises(E.AlreadySubmitted):
        a.submit_update(task, 1, fed.update_cid(task, 1, 0), 10)
    # Nothing refused changed the round.
    assert b.round_info(task, 1).submissions == 1
    assert [s.member for s in b.submissions(task, 1)] == [a.account.address]


def test_attest_refusals(fed: Fed) -> None:
    a, b, c = fed.members
    task = fed.new_task()
    root = fed.tree(task, 1, [0, 1, 2]).root
    agg = fed.aggregate_cid(task, 1)
    fed.submit(task, 1, [0, 1])
    with pytest.raises(E.UpdatesNotClosed):
        a.attest_aggregate(task, 1, agg, root)
    fed.submit(task, 1, [2])
    with pytest.raises(E.NotMember):
        fed.client(fed.outsiders[0]).attest_aggregate(task, 1, agg, root)
    with pytest.raises(E.WrongRound) as wrong:
        a.attest_aggregate(task, 2, agg, root)
    assert wrong.value.args_by_name == {"expected": 1, "given": 2}
    with pytest.raises(E.InvalidCid):
        a.attest_aggregate(task, 1, agg[:-1], root)
    with pytest.raises(E.ZeroScoresDigest):
        a.attest_aggregate(task, 1, agg, bytes(32))
    a.attest_aggregate(task, 1, agg, root)
    with pytest.raises(E.AlreadyAttested):
        a.attest_aggregate(task, 1, agg, root)
    b.attest_aggregate(task, 1, agg, root)
    c.attest_aggregate(task, 1, agg, root)
    assert a.round_info(task, 1).status is RoundStatus.FINALIZED
    with pytest.raises(E.AlreadyAttested):
        b.attest_aggregate(task, 1, agg, root)
    fed.run_round(task, 2)
    with pytest.raises(E.RoundAlreadyFinalized):
        a.attest_aggregate(task, 1, agg, root)


def test_a_disagreeing_pair_can_still_win(fed: Fed) -> None:
    """Votes are counted per (aggregate, scores) pair, whichever came first."""
    a, b, c = fed.members
    task = fed.new_task(quorum=2)
    fed.submit(task, 1, [0, 1, 2])
    good_root = fed.tree(task, 1, [0, 1, 2]).root
    a.attest_aggregate(task, 1, fed.aggregate_cid(task, 1, "bad"), good_root)
    b.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), good_root)
    assert a.round_info(task, 1).status is RoundStatus.CLOSED
    fin = c.attest_aggregate(task, 1, fed.aggregate_cid(task, 1), good_root).event(RoundFinalized)
    assert (fin.aggregate_cid, fin.attestations) == (fed.aggregate_cid(task, 1), 2)
    assert a.task(task).global_model_digest == fed.aggregate_cid(task, 1)[4:]


def test_task_creation_rules(fed: Fed) -> None:
    a = fed.members[0]
    with pytest.raises(E.NotMember):
        fed.client(fed.outsiders[0]).create_task(cid_of(b"s"), cid_of(b"m"), 2, 10, 10, 1, 10)
    with pytest.raises(E.InvalidCid):
        a.create_task(b"not a cid", cid_of(b"m"), 2, 10, 10, 1, 10)
    for args, reason in (
        ((0, 10, 10, 1, 10), "quorum"),
        ((2, 0, 10, 1, 10), "roundDuration"),
        ((2, 10, 2**32, 1, 10), "attestDuration"),
        ((2, 10, 10, 0, 10), "numRounds"),
        ((2, 10, 10, 2**16, 10), "numRounds"),
        ((2, 10, 10, 1, 0), "maxSamples"),
    ):
        with pytest.raises(E.InvalidConfig) as exc:
            a.create_task(cid_of(b"s"), cid_of(b"m"), *args)
        assert reason in exc.value.args_by_name["reason"]
    first = fed.new_task()
    second = fed.new_task(by=1)
    assert (first, second) == (1, 2) and a.task_count() == 2
    assert a.spec_cid(second).startswith("b")
    # Two tasks run side by side without touching each other's rounds.
    fed.run_round(second, 1)
    assert a.task(first).current_round == 1 and a.task(second).current_round == 2
    with pytest.raises(E.UnknownTask):
        a.task(3)
    with pytest.raises(E.UnknownTask):
        a.round_info(3, 1)
    assert a.round_info(first, 7).status is RoundStatus.NONE
