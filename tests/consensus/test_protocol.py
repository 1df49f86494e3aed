from __future__ import annotations

import dataclasses

from consensus.protocol import Action, RoundStatus, RoundView, next_action

BASE = RoundView(
    status=RoundStatus.COLLECTING,
    now=100,
    submit_deadline=200,
    attest_deadline=300,
    submissions=0,
    quorum=2,
    eligible=True,
    submitted=False,
    attested=False,
    task_complete=False,
)


def v(**kw: object) -> RoundView:
    return dataclasses.replace(BASE, **kw)  # type: ignore[arg-type]


def test_collecting() -> None:
    assert next_action(BASE) is Action.TRAIN_AND_SUBMIT
    assert next_action(v(submitted=True)) is Action.WAIT
    assert next_action(v(eligible=False)) is Action.WAIT
    assert next_action(v(now=201, submitted=True, submissions=2)) is Action.CLOSE_UPDATES
    assert next_action(v(now=201, submitted=True, submissions=1)) is Action.FAIL_ROUND
    assert next_action(v(now=201, submissions=1, eligible=False)) is Action.WAIT


def test_closed_and_after() -> None:
    closed = v(status=RoundStatus.CLOSED, submitted=True, submissions=2)
    assert next_action(closed) is Action.AGGREGATE_AND_ATTEST
    assert next_action(dataclasses.replace(closed, attested=True)) is Action.WAIT
    assert next_action(dataclasses.replace(closed, now=301)) is Action.FAIL_ROUND
    assert next_action(v(status=RoundStatus.FINALIZED)) is Action.WAIT
    assert next_action(v(task_complete=True)) is Action.DONE
