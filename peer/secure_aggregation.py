"""The peer's side of secure aggregation (``consensus.secagg``), per docs/secure-aggregation.md.

A member masks its clipped, weighted fixed-point change toward every member eligible when the
round opened (their X25519 keys read from the chain's events), and submits the masked bytes as
its update.  Once the chain closed the update set, every member fetches exactly the closed set's
masked updates, sums them and decodes fixed-point FedAvg; the sum is checked against the on-chain
sample counts and ``clip_norm`` (:func:`~consensus.secagg.rounds.check_mean`).  The aggregate is
a pure function of the closed set, so every honest member attests the same bytes.

Credit follows the submission and its (capped) sample count only: nobody sees an update.

A member that was expected but did not submit (the set D) leaves masks in the sum that only
the submitters' pair-seed reveals remove: each member of the closed set S computes its seeds
with the members of D (:func:`~consensus.secagg.rounds.reveals_for`, never a seed with another
submitter) and hands them to ``publish`` (the node signs and gossips them, and re-sends them
every :data:`REVEAL_REPEAT_SECONDS` while the round waits for attestations).  Every member waits
until each member of S has revealed, then unmasks; until then :meth:`SecureRounds.decide` raises
:class:`RevealsPending`.  A member of S that never reveals makes the round fail at its attest
deadline (nothing leaks; the next round runs).  A member killed *after* submitting is in S: its
masks cancel and the round finalizes without it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from consensus.contribution import Credit
from consensus.round_decision import RoundDecision
from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import (
    Reveal,
    RoundKeys,
    check_mean,
    encode_with_weight,
    mask_update,
    reveals_for,
    unmask_sum,
)
from consensus.secagg.state import apply_change, change_of
from consensus.secagg.wire import (
    masked_from_bytes,
    masked_size,
    masked_to_bytes,
    round_reveals_from_text,
    round_reveals_to_text,
)
from consensus.serialization import (
    bundle_reference,
    bundle_to_bytes,
    header_notes,
    model_bytes_limit,
)
from consensus.strategies.abc import Aggregate, StateDict
from consensus.task_spec import SecureAggregationSettings
from fedchain.errors import ConfigError, ContentError, FedchainError, ProtocolError
from peer.confidential.seal import round_member_keys
from peer.content.cid import cid_from_bytes
from peer.ledger.abc import FederationLedger
from peer.ledger.types import Submission
from peer.updates import ContentFetcher

log = logging.getLogger("fedchain.peer.secure_aggregation")

REVEAL_REPEAT_SECONDS = 5.0
"""How often a submitter re-sends its reveals while its round waits for attestations: gossip
can lose a message, and a peer that (re)started late still needs every submitter's seeds."""

KEEP_PLAIN_ENV = "FEDCHAIN_SECAGG_KEEP_PLAIN"
"""Test/debug switch: when "1", a member also writes its own unmasked change (float64, .npy)
under ``<state_dir>/secagg-plain/`` so tests can recompute fixed-point FedAvg.  Never
published; off by default."""


def capped_scores(submissions: list[Submission], max_samples: int) -> list[tuple[str, int]]:
    """Each submitter's score: its sample count, capped by the task (chain order)."""
    return [(s.member, min(s.num_samples, max_samples)) for s in submissions]


REVEALS_NOTE = "fedchain/secagg-reveals"
"""The aggregate's header entry holding the reveals its round was unmasked with."""


def secure_decision(
    fp: FixedPoint,
    keys: RoundKeys,
    submissions: list[Submission],
    fetcher: ContentFetcher,
    previous: Mapping[str, torch.Tensor],
    state: StateDict,
    reveals: list[Reveal],
    *,
    max_samples: int,
) -> tuple[RoundDecision | None, dict[str, str]]:
    """The aggregate of a closed set of masked updates unmasked with ``reveals`` (the peer's
    and the auditor's one computation), or None with the reasons it cannot be computed."""
    parameters = sum(t.numel() for t in previous.values())
    masked, problems = {}, {}
    for sub in submissions:
        cid = cid_from_bytes(sub.cid)
        try:
            data = fetcher.fetch_verified(cid, max_bytes=masked_size(parameters))
            masked[sub.member.lower()] = masked_from_bytes(data, parameters)
        except (ContentError, ProtocolError) as exc:
            problems[sub.member] = f"masked update {cid} unusable: {exc}"
    if problems:
        return None, problems
    try:
        result = unmask_sum(fp, masked, reveals, keys)
        check_mean(fp, result, sum(s.num_samples for s in submissions))
    except ProtocolError as exc:
        return None, {s.member: f"the round's masked sum is refused: {exc}" for s in submissions}
    scores = capped_scores(submissions, max_samples)
    aggregate = Aggregate(
        weights=apply_change(previous, result.mean_change),
        accepted=tuple(s.member for s in submissions),
        scores={s.member: 1.0 for s in submissions},
        state=dict(state),
    )
    decision = RoundDecision(aggregate, {}, [Credit(m, n) for m, n in scores])
    if reveals:  # recorded in the content, which must stay fetchable as the next round's model
        try:
            size = len(secure_bundle(keys.task_id, keys.round, decision, reveals))
            limit = model_bytes_limit(bundle_reference(previous, state))
            if size > limit:
                raise ProtocolError(
                    f"with its reveals the aggregate has {size} bytes, over the "
                    f"{limit} a model fetch allows"
                )
        except ProtocolError as exc:
            return None, {s.member: f"the round cannot be recorded: {exc}" for s in submissions}
    return decision, {}


def secure_bundle(
    task_id: int, round_no: int, decision: RoundDecision, reveals: list[Reveal]
) -> bytes:
    """A masked round's aggregate content.  With reveals (members did not submit), they are
    recorded in its header in canonical order, so its CID commits to them and an auditor can
    replay the round later; every honest peer used the same reveals (every submitter's seeds
    with every non-submitter), so the bytes agree.  Without, the plain bundle's bytes."""
    note = (REVEALS_NOTE, round_reveals_to_text(task_id, round_no, reveals)) if reveals else None
    return bundle_to_bytes(decision.aggregate.weights, decision.aggregate.state, note)


def recorded_reveals(content: bytes, task_id: int, round_no: int) -> list[Reveal]:
    """The reveals a masked round's aggregate content records; ProtocolError if none or
    malformed."""
    note = header_notes(content).get(REVEALS_NOTE)
    if note is None:
        raise ProtocolError(f"round {round_no}'s aggregate records no reveals")
    return round_reveals_from_text(note, task_id, round_no)


class RevealsPending(FedchainError):
    """Some submitters' reveals have not arrived: decide again later (until the attest
    deadline).  ``waiting`` maps each such submitter to what is missing."""

    def __init__(self, round_no: int, waiting: dict[str, str]) -> None:
        super().__init__(
            f"round {round_no}: waiting for the reveals of {', '.join(sorted(waiting))}"
        )
        self.waiting = waiting


@dataclass
class SecureRounds:
    """Masks this member's updates and unmasks each round's sum, for one task."""

    settings: SecureAggregationSettings
    ledger: FederationLedger
    task_id: int
    me: str
    secret: bytes | None
    state_dir: Path
    publish: Callable[[int, list[Reveal]], None] | None = None
    """Sends this member's reveals of a round to the others (signed gossip, in the node)."""
    clock: Callable[[], float] = field(default=time.monotonic)

    def __post_init__(self) -> None:
        if self.secret is None:
            raise ConfigError(
                "this task uses secure aggregation: set keys.encryption_keystore (the X25519 key "
                "written by `fedchain init`, registered on the chain) in the peer config"
            )
        self.fp = FixedPoint(self.settings.clip_norm, self.settings.fraction_bits)
        self._keys: dict[int, RoundKeys] = {}
        self._received: dict[int, dict[str, list[Reveal]]] = {}
        """Round -> revealer -> its reveals (checked against the closed set by gossip)."""
        self._outgoing: dict[int, list[Reveal]] = {}
        self._sent_at: dict[int, float] = {}
        self._used: dict[int, list[Reveal]] = {}
        """Round -> the reveals its aggregate was unmasked with (recorded in its content)."""
        self._current = 0

    def update_bytes(self, reference: Mapping[str, torch.Tensor]) -> int:
        """Size of a masked update of this model (it is fixed before download)."""
        return masked_size(sum(t.numel() for t in reference.values()))

    def round_keys(self, round_no: int) -> RoundKeys:
        """The expected members of ``round_no`` and their keys, from the chain."""
        if round_no not in self._keys:
            publics = round_member_keys(
                self.ledger, self.task_id, round_no, "no masks can be agreed with them"
            )
            self._keys[round_no] = RoundKeys(self.task_id, round_no, publics)
        return self._keys[round_no]

    def mask(
        self,
        round_no: int,
        weights: Mapping[str, torch.Tensor],
        global_weights: Mapping[str, torch.Tensor],
        samples: int,
    ) -> bytes:
        """This member's masked update of ``round_no`` as content-store bytes."""
        change = change_of(weights, global_weights)
        if os.environ.get(KEEP_PLAIN_ENV) == "1":
            self._keep_plain(round_no, change)
        encoded = encode_with_weight(self.fp, change, samples)
        assert self.secret is not None  # checked at construction
        return masked_to_bytes(
            mask_update(encoded, self.me, self.secret, self.round_keys(round_no))
        )

    def decide(
        self,
        round_no: int,
        submissions: list[Submission],
        fetcher: ContentFetcher,
        previous: Mapping[str, torch.Tensor],
        state: StateDict,
        *,
        max_samples: int,
    ) -> tuple[RoundDecision | None, dict[str, str]]:
        """The round's aggregate from its closed set, or None with the reasons it cannot be
        computed (a masked update missing or malformed, or a sum that fails the checks).

        When expected members did not submit, this member's reveals go out first, and
        RevealsPending is raised until every submitter's reveals are in."""
        keys = self.round_keys(round_no)
        submitted = {s.member.lower() for s in submissions}
        dropped = sorted(set(keys.publics) - submitted)
        reveals = self._reveals(round_no, keys, submitted, dropped) if dropped else []
        decision, problems = secure_decision(
            self.fp, keys, submissions, fetcher, previous, state, reveals, max_samples=max_samples
        )
        if decision is not None:
            self._used[round_no] = reveals
        return decision, problems

    def aggregate_bytes(self, round_no: int, decision: RoundDecision) -> bytes:
        """The content of the aggregate :meth:`decide` returned, with the reveals it used."""
        return secure_bundle(self.task_id, round_no, decision, self._used.get(round_no, []))

    def receive_reveals(self, round_no: int, reveals: list[Reveal]) -> None:
        """Keep one submitter's reveals of ``round_no`` (the first that arrived)."""
        if not reveals or round_no < self._current:
            return
        self._received.setdefault(round_no, {}).setdefault(reveals[0].revealer.lower(), reveals)

    def resend_reveals(self, round_no: int, waiting_for_attestations: bool) -> None:
        """Called each step with the chain's current round: forget earlier rounds; re-send this
        member's reveals of ``round_no`` while it waits for attestations."""
        self._current = round_no
        for book in (self._received, self._outgoing, self._sent_at, self._used):
            for old in [r for r in book if r < round_no]:
                del book[old]
        if not waiting_for_attestations or round_no not in self._outgoing:
            return
        if self.clock() - self._sent_at[round_no] >= REVEAL_REPEAT_SECONDS:
            self._send(round_no)

    def _reveals(
        self, round_no: int, keys: RoundKeys, submitted: set[str], dropped: list[str]
    ) -> list[Reveal]:
        """Every submitter's seeds with the members of ``dropped``; RevealsPending until then.

        A reveal naming a submitter (the gossip validator refuses those) is dropped, never used.
        """
        if self.me in submitted and round_no not in self._outgoing:
            assert self.secret is not None  # checked at construction
            own = reveals_for(self.me, self.secret, keys, submitted)
            self._outgoing[round_no] = own
            self._received.setdefault(round_no, {})[self.me] = own
            self._send(round_no)
        got = self._received.get(round_no, {})
        reveals: list[Reveal] = []
        waiting: dict[str, str] = {}
        for member in sorted(submitted):
            seeds = {r.dropped.lower(): r.seed for r in got.get(member, [])}
            named = sorted(set(seeds) & submitted)
            if named:
                del got[member]
                waiting[member] = f"its reveal named {', '.join(named)}, which submitted; refused"
                log.warning(
                    "round %d: refused the reveal of %s: %s", round_no, member, waiting[member]
                )
                continue
            missing = [d for d in dropped if d not in seeds]
            if missing:
                waiting[member] = (
                    f"has not revealed its seeds with {', '.join(missing)} (expected, did not "
                    "submit); without them the sum cannot be unmasked and the round fails at "
                    "its attest deadline"
                )
                continue
            reveals += [Reveal(member, d, seeds[d]) for d in dropped]
        if waiting:
            raise RevealsPending(round_no, waiting)
        return reveals

    def _send(self, round_no: int) -> None:
        self._sent_at[round_no] = self.clock()
        if self.publish is not None:
            self.publish(round_no, self._outgoing[round_no])

    def _keep_plain(self, round_no: int, change: np.ndarray) -> None:
        folder = self.state_dir / "secagg-plain"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"round-{round_no}.npy", change, allow_pickle=False)
