"""What the dashboard shows, as one frozen value: the page renders a snapshot and nothing else.

Keeping the reading (:mod:`.collect`) apart from the shape lets the unit tests build snapshots
from an in-memory chain and the page test compare what Chromium shows with what the chain says.
Every part that could not be read is present and says why (a :class:`SourceState`, or
``records_absent``), so the page never has to guess whether something is empty or unknown.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass

NEEDS_RECORDS = "needs a peer's records (run with --config, or --records FOLDER)"


@dataclass(frozen=True)
class SourceState:
    """One thing the dashboard reads (chain, IPFS, records) and whether it answered."""

    name: str
    ok: bool
    detail: str


@dataclass(frozen=True)
class MemberView:
    address: str
    peer_id: str
    status: str
    """"member" or "removed"."""
    credit: int
    name: str | None = None
    """The institution's name, where the records tie its address to one."""
    last_update_round: int | None = None
    """Latest round (in the newest task) this member submitted an update in."""
    epsilon: float | None = None
    """ε committed on chain with its latest update (newest task); None: DP off or none yet."""
    own: bool = False


@dataclass(frozen=True)
class TaskView:
    task_id: int
    status: str
    current_round: int
    num_rounds: int
    finalized_rounds: int
    quorum: int
    phase: str
    name: str | None = None
    model: str | None = None
    rule: str | None = None
    """From the task spec in IPFS (None when IPFS is not read)."""


@dataclass(frozen=True)
class RoundView:
    task_id: int
    round: int
    status: str
    """"collecting", "closed", "finalized" or "failed"."""
    opened_at: int | None
    ended_at: int | None
    seconds: int | None
    """Chain time from opening to finalizing/failing (block timestamps, whole seconds)."""
    eligible: int
    participants: tuple[str, ...]
    attestations: int
    dissent: tuple[str, ...]
    aggregate_cid: str | None
    gas: int | None
    """Gas of every transaction of the round (updates, close, attestations, finalize, claims,
    dissent), from their receipts."""
    gas_per_participant: int | None
    aggregate_in_ipfs: bool | None = None
    """Whether the own Kubo holds the agreed aggregate (None: IPFS not read or no aggregate)."""


@dataclass(frozen=True)
class ClaimView:
    task_id: int
    round: int
    member: str
    score: int


@dataclass(frozen=True)
class LeftOutView:
    round: int
    member: str
    outcome: str
    """"left out" (not aggregated) or "no credit" (aggregated, scored 0)."""
    why: str


@dataclass(frozen=True)
class RecordsView:
    """What only a peer's (or a demo run's) own records know."""

    folder: str
    metric: str | None
    own_test: Mapping[str, Mapping[int, float]]
    """Institution -> round -> the agreed model's metric on its own test split."""
    local_only: Mapping[str, float]
    """Institution -> the local-only model's metric on its own test split (empty until a run
    record holds it)."""
    left_out: tuple[LeftOutView, ...]
    epsilon: Mapping[str, Mapping[int, float]]
    """Institution -> round -> ε spent after that round (DP on)."""


@dataclass(frozen=True)
class Snapshot:
    taken_at: float
    mode: str
    """"peer" (a peer's config) or "auditor" (chain and optionally IPFS only)."""
    contract: str
    sources: tuple[SourceState, ...]
    chain_id: int | None = None
    block: int | None = None
    members: tuple[MemberView, ...] = ()
    tasks: tuple[TaskView, ...] = ()
    rounds: tuple[RoundView, ...] = ()
    claims: tuple[ClaimView, ...] = ()
    records: RecordsView | None = None
    records_absent: str | None = NEEDS_RECORDS
    chain_read_at: float | None = None
    """When the chain's parts (members .. claims) were read: ``taken_at`` while the chain
    answers; earlier while it is down and the last reading is shown."""

    def source(self, name: str) -> SourceState:
        return next(s for s in self.sources if s.name == name)

    def to_json(self) -> str:
        """Strict JSON for the page (mapping keys become strings)."""
        return json.dumps(asdict(self), sort_keys=True, allow_nan=False)
