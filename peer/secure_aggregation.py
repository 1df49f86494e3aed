"""The peer's side of secure aggregation (``consensus.secagg``), per docs/secure-aggregation.md.

A member masks its clipped, weighted fixed-point change toward every member eligible when the
round opened (their X25519 keys read from the chain's events), and submits the masked bytes as
its update.  Once the chain closed the update set, every member fetches exactly the closed set's
masked updates, sums them and decodes fixed-point FedAvg; the sum is checked against the on-chain
sample counts and ``clip_norm`` (:func:`~consensus.secagg.rounds.check_mean`).  The aggregate is
a pure function of the closed set, so every honest member attests the same bytes.

Credit follows the submission and its (capped) sample count only: nobody sees an update.

A member that was expected but did not submit leaves masks in the sum that only the submitters'
pair-seed reveals remove; publishing reveals is not built yet, so such a round is not
aggregated (it fails at its attest deadline, and nothing leaks).  A member killed *after*
submitting is in the closed set: its masks cancel and the round finalizes without it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from consensus.contribution import Credit
from consensus.round_decision import RoundDecision
from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import (
    RoundKeys,
    check_mean,
    encode_with_weight,
    mask_update,
    unmask_sum,
)
from consensus.secagg.state import apply_change, change_of
from consensus.secagg.wire import masked_from_bytes, masked_size, masked_to_bytes
from consensus.strategies.abc import Aggregate, StateDict
from consensus.task_spec import SecureAggregationSettings
from fedchain.errors import ConfigError, ContentError, ProtocolError
from peer.confidential.seal import round_member_keys
from peer.content.cid import cid_from_bytes
from peer.ledger.abc import FederationLedger
from peer.ledger.types import Submission
from peer.updates import ContentFetcher

KEEP_PLAIN_ENV = "FEDCHAIN_SECAGG_KEEP_PLAIN"
"""Test/debug switch: when "1", a member also writes its own unmasked change (float64, .npy)
under ``<state_dir>/secagg-plain/`` so tests can recompute fixed-point FedAvg.  Never
published; off by default."""


def capped_scores(submissions: list[Submission], max_samples: int) -> list[tuple[str, int]]:
    """Each submitter's score: its sample count, capped by the task (chain order)."""
    return [(s.member, min(s.num_samples, max_samples)) for s in submissions]


@dataclass
class SecureRounds:
    """Masks this member's updates and unmasks each round's sum, for one task."""

    settings: SecureAggregationSettings
    ledger: FederationLedger
    task_id: int
    me: str
    secret: bytes | None
    state_dir: Path

    def __post_init__(self) -> None:
        if self.secret is None:
            raise ConfigError(
                "this task uses secure aggregation: set keys.encryption_keystore (the X25519 key "
                "written by `fedchain init`, registered on the chain) in the peer config"
            )
        self.fp = FixedPoint(self.settings.clip_norm, self.settings.fraction_bits)
        self._keys: dict[int, RoundKeys] = {}

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
        computed (a masked update missing or malformed, expected members that did not submit,
        or a sum that fails the checks)."""
        keys = self.round_keys(round_no)
        missing = sorted(set(keys.publics) - {s.member.lower() for s in submissions})
        if missing:
            reason = "expected in the round but did not submit: removing its masks needs reveals"
            return None, {m: reason for m in missing}
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
            result = unmask_sum(self.fp, masked, [], keys)
            check_mean(self.fp, result, sum(s.num_samples for s in submissions))
        except ProtocolError as exc:
            return None, {
                s.member: f"the round's masked sum is refused: {exc}" for s in submissions
            }
        scores = capped_scores(submissions, max_samples)
        aggregate = Aggregate(
            weights=apply_change(previous, result.mean_change),
            accepted=tuple(s.member for s in submissions),
            scores={s.member: 1.0 for s in submissions},
            state=dict(state),
        )
        return RoundDecision(aggregate, {}, [Credit(m, n) for m, n in scores]), {}

    def _keep_plain(self, round_no: int, change: np.ndarray) -> None:
        folder = self.state_dir / "secagg-plain"
        folder.mkdir(parents=True, exist_ok=True)
        np.save(folder / f"round-{round_no}.npy", change, allow_pickle=False)
