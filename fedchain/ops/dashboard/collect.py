"""Read the chain, IPFS and the peer's records into a :class:`Snapshot`.

The chain is read through the ledger interface as an observer (nothing is signed), the same
reads ``fedchain status`` makes (:mod:`fedchain.ops.status_chain`); the records through
:func:`fedchain.ops.run_data.load_run`, as ``fedchain report`` reads them.  Every source may be
down: :func:`snapshot_of` never raises for that, it marks the source as not answering and
leaves its part empty, so the page shows an outage instead of going blank.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar, get_args

from consensus.protocol import RoundStatus
from fedchain.errors import ConfigError, FedchainError
from fedchain.ops.dashboard.chain_facts import ChainFacts
from fedchain.ops.dashboard.snapshot import (
    NEEDS_RECORDS,
    ClaimView,
    LeftOutView,
    MemberView,
    RecordsView,
    RoundView,
    Snapshot,
    SourceState,
    TaskView,
)
from fedchain.ops.report import not_credited
from fedchain.ops.run_data import RECORD_FILE, load_run
from fedchain.ops.status_chain import task_line
from peer.agreed_spec import read_spec
from peer.content.abc import ContentStore
from peer.content.cid import cid_from_bytes
from peer.ledger.abc import FederationLedger
from peer.ledger.events import (
    AggregateAttested,
    ContractEvent,
    ContributionClaimed,
    DissentRecorded,
    MemberAdmitted,
    MemberRemoved,
    RoundFailed,
    RoundFinalized,
    RoundOpened,
    UpdatesClosed,
    UpdateSubmitted,
)

RoundEvent = (
    RoundOpened
    | UpdateSubmitted
    | UpdatesClosed
    | AggregateAttested
    | RoundFinalized
    | RoundFailed
    | DissentRecorded
    | ContributionClaimed
)
"""Every event that belongs to one round of one task."""
ROUND_EVENTS: tuple[type[ContractEvent], ...] = get_args(RoundEvent)
GAS_EVENTS = tuple(k for k in ROUND_EVENTS if k is not RoundOpened)
"""A round opens in the transaction that ended the round before (or created the task): its
gas belongs there."""
SPEC_TIMEOUT = 5.0
NO_ROUNDS_YET = "no rounds recorded yet"
"""An empty records folder: a peer (or demo) before its first round ended, not an error."""
E = TypeVar("E", bound=ContractEvent)


@dataclass(frozen=True)
class SpecFacts:
    """What the dashboard shows of a task spec (read once from IPFS: specs never change)."""

    name: str
    model: str
    rule: str


@dataclass(frozen=True)
class Reading:
    """Where one snapshot reads from; ``ledger`` None: the chain did not answer (``chain``
    says why)."""

    ledger: FederationLedger | None
    facts: ChainFacts | None
    chain: SourceState
    content: ContentStore | None = None
    ipfs: SourceState | None = None
    records: Path | None = None
    own_address: str | None = None
    own_name: str | None = None
    """A peer's institution name, from its config (the row is named before any record)."""


def _round_views(
    facts: ChainFacts | None,
    content: ContentStore | None,
    events: Sequence[ContractEvent],
    current: dict[tuple[int, int], RoundStatus],
) -> list[RoundView]:
    by_round: dict[tuple[int, int], list[ContractEvent]] = defaultdict(list)
    for ev in events:
        if isinstance(ev, RoundEvent):
            by_round[(ev.task_id, ev.round)].append(ev)
    views = []
    for key in sorted(by_round):
        found = by_round[key]
        opened = _first(found, RoundOpened)
        final = _first(found, RoundFinalized)
        failed = _first(found, RoundFailed)
        ended = final or failed
        if key in current:
            status = current[key].name.lower()
        elif final is not None:
            status = "finalized"
        elif failed is not None:
            status = "failed"
        else:
            status = "closed" if _first(found, UpdatesClosed) else "collecting"
        opened_at = _time(facts, opened)
        ended_at = _time(facts, ended)
        participants = tuple(e.member for e in found if isinstance(e, UpdateSubmitted))
        gas = _gas(facts, [e for e in found if isinstance(e, GAS_EVENTS)])
        aggregate = cid_from_bytes(final.aggregate_cid) if final is not None else None
        views.append(
            RoundView(
                task_id=key[0],
                round=key[1],
                status=status,
                opened_at=opened_at,
                ended_at=ended_at,
                seconds=ended_at - opened_at if ended_at and opened_at else None,
                eligible=opened.eligible if opened is not None else 0,
                participants=participants,
                attestations=sum(isinstance(e, AggregateAttested) for e in found),
                dissent=tuple(e.member for e in found if isinstance(e, DissentRecorded)),
                aggregate_cid=aggregate,
                gas=gas,
                gas_per_participant=gas // len(participants) if gas and participants else None,
                aggregate_in_ipfs=_held(content, aggregate),
            )
        )
    return views


def _first(found: Iterable[ContractEvent], kind: type[E]) -> E | None:
    return next((e for e in found if isinstance(e, kind)), None)


def _time(facts: ChainFacts | None, ev: ContractEvent | None) -> int | None:
    return facts.block_time(ev.block_number) if facts is not None and ev is not None else None


def _gas(facts: ChainFacts | None, found: Sequence[ContractEvent]) -> int | None:
    if facts is None or not found:
        return None
    used = [facts.gas_used(h) for h in dict.fromkeys(e.tx_hash for e in found)]
    return None if any(u is None for u in used) else sum(u for u in used if u is not None)


def _held(content: ContentStore | None, cid: str | None) -> bool | None:
    if content is None or cid is None:
        return None
    try:
        return content.has_local(cid)
    except FedchainError:
        return None


def _tasks(
    ledger: FederationLedger, content: ContentStore | None, specs: dict[int, SpecFacts]
) -> tuple[list[TaskView], dict[tuple[int, int], RoundStatus]]:
    """Every task, and the stored status of each task's current round."""
    views, current = [], {}
    for task_id in range(1, ledger.task_count() + 1):
        line, task = task_line(ledger, task_id)
        if task is None:
            continue
        if not task.completed:
            info = ledger.stored_round_info(task_id, task.current_round)
            current[(task_id, task.current_round)] = RoundStatus(info.status)
        spec = specs.get(task_id) or _spec_facts(ledger, content, task_id)
        if spec is not None:
            specs[task_id] = spec
        views.append(
            TaskView(
                task_id=task_id,
                status=task.status.name.lower(),
                current_round=task.current_round,
                num_rounds=task.num_rounds,
                finalized_rounds=task.finalized_rounds,
                quorum=task.quorum,
                phase=line.text,
                name=spec.name if spec else None,
                model=spec.model if spec else None,
                rule=spec.rule if spec else None,
            )
        )
    return views, current


def _spec_facts(
    ledger: FederationLedger, content: ContentStore | None, task_id: int
) -> SpecFacts | None:
    """The spec's name, model and rule from IPFS (checked against the on-chain CID)."""
    if content is None:
        return None
    try:
        spec = read_spec(ledger, content, task_id, SPEC_TIMEOUT)
    except FedchainError:
        return None
    return SpecFacts(spec.name, spec.model.arch, spec.aggregation.rule)


def _members(
    ledger: FederationLedger,
    events: Sequence[ContractEvent],
    names: dict[str, str],
    own: str | None,
    newest_task: int | None,
) -> list[MemberView]:
    current = ledger.members()
    removed = [
        e.account for e in events if isinstance(e, MemberRemoved) and e.account not in current
    ]
    admitted = {e.account: e.peer_id for e in events if isinstance(e, MemberAdmitted)}
    last: dict[str, int] = {}
    for e in events:
        if isinstance(e, UpdateSubmitted) and e.task_id == newest_task:
            last[e.member] = max(last.get(e.member, 0), e.round)
    views = []
    for address in [*current, *dict.fromkeys(removed)]:
        epsilon = None
        if newest_task is not None:
            _, milli = ledger.privacy_spent_of(newest_task, address)
            epsilon = milli / 1000 if milli else None
        views.append(
            MemberView(
                address=address,
                peer_id=ledger.peer_id_of(address) or admitted.get(address, ""),
                status="member" if address in current else "removed",
                credit=ledger.credit_of(address),
                name=names.get(address.lower()),
                last_update_round=last.get(address),
                epsilon=epsilon,
                own=own is not None and address.lower() == own.lower(),
            )
        )
    return views


def records_view(folder: Path) -> tuple[RecordsView | None, SourceState, dict[str, str]]:
    """The peer's (or a demo run's) own records, their state, and address -> institution name
    where they tie the two; absent records say so."""
    try:
        run = load_run(folder)
    except FedchainError as exc:
        if not folder.exists():
            detail = f"{NO_ROUNDS_YET}: {folder} does not exist yet (a peer makes it on start)"
            return None, SourceState("records", True, detail), {}
        if isinstance(exc, ConfigError) and folder.is_dir() and not (folder / RECORD_FILE).exists():
            # a folder with neither a run record nor a history in it: nothing has ended yet
            return None, SourceState("records", True, f"{NO_ROUNDS_YET} in {folder}"), {}
        return None, SourceState("records", False, str(exc)), {}
    left_out = tuple(LeftOutView(r, m, kind, why) for r, m, kind, why in not_credited(run))
    view = RecordsView(
        folder=str(folder),
        metric=run.metric,
        own_test=run.per_institution,
        local_only={i.name: i.local_only for i in run.institutions if i.local_only is not None},
        left_out=left_out,
        epsilon=run.epsilon,
    )
    rounds = sum(len(h) for h in run.histories.values())
    state = SourceState("records", True, f"{rounds} round records in {folder}")
    return view, state, dict(run.names)


def snapshot_of(
    reading: Reading,
    *,
    mode: str,
    contract: str,
    spec_cache: dict[int, SpecFacts] | None = None,
    clock: Callable[[], float] = time.time,
) -> Snapshot:
    """One snapshot; a source that fails part-way is marked down and its part left empty."""
    records: RecordsView | None = None
    records_state: SourceState | None = None
    names: dict[str, str] = {}
    if reading.records is not None:
        records, records_state, names = records_view(reading.records)
        own = reading.own_address
        if own is not None and reading.own_name is not None:
            names.setdefault(own.lower(), reading.own_name)
        elif records is not None and own is not None and len(records.own_test) == 1:
            names.setdefault(own.lower(), next(iter(records.own_test)))  # a peer's own records
    sources = [reading.chain]
    if reading.ipfs is not None:
        sources.append(reading.ipfs)
    if records_state is not None:
        sources.append(records_state)
    base = Snapshot(
        taken_at=clock(),
        mode=mode,
        contract=contract,
        sources=tuple(sources),
        records=records,
        records_absent=None if records is not None else _absent(records_state),
    )
    ledger = reading.ledger
    if ledger is None:
        return base
    try:
        block = ledger.block_number()
        tasks, current = _tasks(
            ledger, reading.content, spec_cache if spec_cache is not None else {}
        )
        kinds = (*ROUND_EVENTS, MemberAdmitted, MemberRemoved)
        events = ledger.logs(kinds)
        newest = tasks[-1].task_id if tasks else None
        members = _members(ledger, events, names, reading.own_address, newest)
        rounds = _round_views(reading.facts, reading.content, events, current)
    except FedchainError as exc:
        down = SourceState("chain", False, f"reading the chain failed: {exc}")
        return replace(base, sources=(down, *base.sources[1:]))
    claims = tuple(
        ClaimView(e.task_id, e.round, e.member, e.score)
        for e in events
        if isinstance(e, ContributionClaimed)
    )
    return replace(
        base,
        chain_read_at=base.taken_at,
        chain_id=ledger.chain_id,
        block=block,
        members=tuple(members),
        tasks=tuple(tasks),
        rounds=tuple(rounds),
        claims=claims,
    )


def _absent(state: SourceState | None) -> str:
    if state is None:
        return NEEDS_RECORDS
    if state.ok:
        return state.detail
    return f"{NEEDS_RECORDS}: {state.detail}"
