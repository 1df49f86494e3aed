"""The chain's lines of ``fedchain status`` on the contract's in-memory twin (the ledger
conformance suite's federation helpers): rounds claimed and not, work per round, phases."""

from __future__ import annotations

import pytest

from fedchain.ops.status_chain import credit_line, round_list, task_line, work_line
from fedchain.ops.status_line import Level
from tests.peer.ledger.conftest import MemoryBackend, make_fed


@pytest.mark.parametrize(
    ("rounds", "shown"),
    [([], "none"), ([3], "3"), ([1, 2, 3, 5], "1-3, 5"), ([7, 1, 2, 2, 9, 8], "1-2, 7-9")],
)
def test_round_list(rounds: list[int], shown: str) -> None:
    assert round_list(rounds) == shown


def test_claimed_unclaimed_and_current_work_are_told_apart() -> None:
    fed = make_fed(MemoryBackend())
    a = fed.members[0]
    me = a.account.address
    task_id = fed.new_task(rounds=5)
    fed.run_round(task_id, 1)
    a.claim_contribution(task_id, 1, 100, fed.tree(task_id, 1, [0, 1, 2]).proof(0))
    fed.run_round(task_id, 2, [0, 1, 2])  # finalized, not claimed by a
    fed.submit(task_id, 3, [0])  # the open round: a has submitted, the others not yet

    line, task = task_line(a, task_id)
    assert task is not None and line.level is Level.OK
    assert line.text.startswith(f"task {task_id}, round 3: collecting updates (1/3, needs 3) until")
    assert line.text.endswith("2 of 5 rounds finalized")

    work = work_line(a, task, me)
    assert work.text == (
        "updates in rounds 1-3, attestations in rounds 1-2 (2 rounds ended); "
        "round 3: update submitted"
    )
    credit = credit_line(a, task, me, "site.toml")
    assert credit.text.startswith("credit 100; this task: 100 claimed in rounds 1; rounds 2 ")
    assert "`fedchain claim --config site.toml`" in credit.text

    other = fed.members[1].account.address
    assert work_line(a, task, other).text.endswith("round 3: update not submitted yet")
    assert credit_line(a, task, other, "x").text.startswith(
        "credit 0; this task: 0 claimed in rounds none; rounds 1-2 finalized"
    )


def test_an_unknown_task_fails_naming_the_setting() -> None:
    fed = make_fed(MemoryBackend())
    line, task = task_line(fed.members[0], 9)
    assert task is None and line.level is Level.FAIL
    assert "task 9 does not exist" in line.text and "fix chain.task_id" in line.text
