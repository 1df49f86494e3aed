"""The chain's side of ``fedchain status``: membership, task and round, own work, credit.

Everything is read through the ledger interface (:class:`peer.ledger.abc.FederationLedger`),
as an observer: nothing is signed or sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from consensus.protocol import RoundStatus
from fedchain.ops.status_line import Level, StatusLine
from peer.ledger.abc import FederationLedger
from peer.ledger.errors import UnknownTask
from peer.ledger.events import (
    AggregateAttested,
    ContributionClaimed,
    RoundFinalized,
    UpdateSubmitted,
)
from peer.ledger.types import TaskInfo


def round_list(rounds: Iterable[int]) -> str:
    """``[1, 2, 3, 5]`` as ``1-3, 5``; ``none`` when empty."""
    ordered = sorted(set(rounds))
    if not ordered:
        return "none"
    runs: list[list[int]] = []
    for r in ordered:
        if runs and r == runs[-1][-1] + 1:
            runs[-1].append(r)
        else:
            runs.append([r])
    return ", ".join(str(g[0]) if len(g) == 1 else f"{g[0]}-{g[-1]}" for g in runs)


def _utc(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def membership_line(ledger: FederationLedger, address: str, peer_id: str | None) -> StatusLine:
    """Is ``address`` a member, and is ``peer_id`` (when known) the one registered for it?"""
    if not ledger.is_member(address):
        return StatusLine(
            Level.FAIL,
            "membership",
            f"{address} is not a member of the federation at {ledger.address}; send the address "
            "and peer ID that `fedchain init` printed to the consortium to be admitted, or check "
            "keys.eth_keystore",
        )
    registered = ledger.peer_id_of(address)
    if peer_id is None:
        return StatusLine(
            Level.OK,
            "membership",
            f"{address} is a member ({ledger.member_count()} members); peer ID not checked "
            "(no keystore password available)",
        )
    if registered != peer_id:
        return StatusLine(
            Level.FAIL,
            "membership",
            f"{address} is a member, but its registered peer ID {registered} is not this "
            f"peer's {peer_id}; check keys.libp2p_keystore",
        )
    return StatusLine(
        Level.OK,
        "membership",
        f"{address} is a member ({ledger.member_count()} members), peer ID {peer_id}",
    )


def task_line(ledger: FederationLedger, task_id: int) -> tuple[StatusLine, TaskInfo | None]:
    """The round the task is on and its phase; the task for the lines that follow."""
    try:
        task = ledger.task(task_id)
    except UnknownTask:
        return StatusLine(
            Level.FAIL,
            "task",
            f"task {task_id} does not exist at {ledger.address} ({ledger.task_count()} tasks); "
            "fix chain.task_id (create-task prints it)",
        ), None
    done = f"{task.finalized_rounds} of {task.num_rounds} rounds finalized"
    if task.completed:
        return StatusLine(Level.OK, "task", f"task {task_id} completed: {done}"), task
    info = ledger.round_info(task_id, task.current_round)
    if info.status is RoundStatus.COLLECTING:
        phase = (
            f"collecting updates ({info.submissions}/{info.eligible}, needs {info.need}) "
            f"until {_utc(info.submit_deadline)}"
        )
    elif info.status is RoundStatus.CLOSED:
        phase = f"updates closed, attesting until {_utc(info.attest_deadline)}"
    else:
        phase = info.status.name.lower()
    text = f"task {task_id}, round {task.current_round}: {phase}; {done}"
    return StatusLine(Level.OK, "task", text), task


def _ended_rounds(task: TaskInfo) -> int:
    return task.current_round if task.completed else task.current_round - 1


def work_line(ledger: FederationLedger, task: TaskInfo, address: str) -> StatusLine:
    """This member's updates and attestations in the task, from the chain's events."""
    submitted = {e.round for e in ledger.events(UpdateSubmitted, task.task_id, None, address)}
    attested = {e.round for e in ledger.events(AggregateAttested, task.task_id, None, address)}
    text = (
        f"updates in rounds {round_list(submitted)}, attestations in rounds "
        f"{round_list(attested)} ({_ended_rounds(task)} rounds ended)"
    )
    if not task.completed:
        now = "submitted" if task.current_round in submitted else "not submitted yet"
        text += f"; round {task.current_round}: update {now}"
    return StatusLine(Level.OK, "own work", text)


def credit_line(
    ledger: FederationLedger, task: TaskInfo, address: str, config_hint: str
) -> StatusLine:
    """Credit held, what was claimed in this task, and finalized rounds with no claim yet."""
    claims = ledger.events(ContributionClaimed, task.task_id, None, address)
    claimed = {e.round for e in claims}
    finalized = {e.round for e in ledger.events(RoundFinalized, task.task_id)}
    submitted = {e.round for e in ledger.events(UpdateSubmitted, task.task_id, None, address)}
    open_claims = (submitted & finalized) - claimed
    text = (
        f"credit {ledger.credit_of(address)}; this task: {sum(e.score for e in claims)} claimed "
        f"in rounds {round_list(claimed)}"
    )
    if open_claims:
        text += (
            f"; rounds {round_list(open_claims)} finalized with an update of ours and no claim "
            f"(zero credit, or not claimed yet: `fedchain claim --config {config_hint}`)"
        )
    return StatusLine(Level.OK, "credit", text)
