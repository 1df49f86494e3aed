"""The round protocol as a pure decision: given what the chain says, what should a peer do next?

Keeping this free of I/O means every peer (and every test) can reason about the
protocol without a chain; the node only executes the chosen action and then
re-reads the chain, so a crash between two steps loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum, IntEnum

from fedchain.errors import ConfigError


class RoundStatus(IntEnum):
    """The contract's ``RoundStatus`` enum (same order); the one enum the ledger, the node and the
    tests use (``peer.ledger.types`` re-exports it)."""

    NONE = 0
    COLLECTING = 1
    CLOSED = 2
    FINALIZED = 3
    FAILED = 4


class Action(Enum):
    TRAIN_AND_SUBMIT = "train-and-submit"
    CLOSE_UPDATES = "close-updates"
    AGGREGATE_AND_ATTEST = "aggregate-and-attest"
    FAIL_ROUND = "fail-round"
    WAIT = "wait"
    DONE = "done"


@dataclass(frozen=True)
class RoundView:
    """What a peer knows about the current round of its task."""

    status: RoundStatus
    now: int
    submit_deadline: int
    attest_deadline: int
    submissions: int
    quorum: int
    eligible: bool
    submitted: bool
    attested: bool
    task_complete: bool


def default_quorum(members: int) -> int:
    """ceil(2n/3) of ``members``: always a strict majority (the contract's rule), and it
    tolerates a third of the members being down (n=2 -> 2, 3 -> 2, 4 -> 3, 10 -> 7)."""
    if members < 1:
        raise ConfigError(f"a federation needs at least one member, got {members}")
    return -(-2 * members // 3)


def effective_quorum(quorum: int, eligible: int) -> int:
    """Updates (and identical attestations) a round needs, as the contract computes it.

    Never less than a strict majority of the members eligible for the round, so a minority can
    neither close nor finalize a round even after admissions mid-task; never more than them.
    """
    return min(max(quorum, eligible // 2 + 1), eligible)


def round_need(need: int, quorum: int, eligible: int) -> int:
    """Updates (and identical attestations) the open round needs: the chain's stored ``need``
    when it has one, else the same rule computed from the task's quorum."""
    return need or effective_quorum(quorum, eligible)


def round_ended(status: RoundStatus) -> bool:
    """True once a round can no longer change (its record can be written)."""
    return status in (RoundStatus.FINALIZED, RoundStatus.FAILED)


def next_action(v: RoundView) -> Action:
    if v.task_complete:
        return Action.DONE
    if v.status is RoundStatus.COLLECTING:
        before_deadline = v.now <= v.submit_deadline
        if before_deadline and v.eligible and not v.submitted:
            return Action.TRAIN_AND_SUBMIT
        if not before_deadline:
            if v.submissions >= v.quorum:
                return Action.CLOSE_UPDATES if v.eligible else Action.WAIT
            return Action.FAIL_ROUND if v.eligible else Action.WAIT
        return Action.WAIT
    if v.status is RoundStatus.CLOSED:
        if v.now > v.attest_deadline:
            return Action.FAIL_ROUND if v.eligible else Action.WAIT
        if v.eligible and not v.attested:
            return Action.AGGREGATE_AND_ATTEST
        return Action.WAIT
    return Action.WAIT
