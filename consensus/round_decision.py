"""A round's aggregate and credits from its checked updates: one pure function for all.

Every honest peer runs :func:`decide_round` on the updates it fetched and checked, the round's
global model and the agreed rule state from that model's content; a restarted peer rebuilding
its claims and an auditor replaying the chain run the same function on the same inputs, so all
of them reach the same aggregate bytes, accepted set and credits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch

from consensus.aggregation import aggregation_seed, canonical_order
from consensus.checks import change_norm_outliers
from consensus.contribution import Credit, contribution_credits
from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.task_spec import TaskSpec


@dataclass(frozen=True)
class RoundInputs:
    """What the chain and the content store fix for one round, before the rule runs."""

    task_id: int
    round: int
    model_digest: bytes
    previous: Mapping[str, torch.Tensor]
    """The round's global model (what every update trained from)."""
    state: Mapping[str, torch.Tensor] = field(default_factory=dict)
    """The rule's agreed state carried in the global model's content."""


@dataclass(frozen=True)
class RoundDecision:
    aggregate: Aggregate
    left_out: dict[str, str]
    """Members left out by the checks that need the whole round (the change-norm bound)."""
    credits: list[Credit]
    """One per update that passed every check, in chain order."""

    def scores(self) -> list[tuple[str, int]]:
        """(member, score) pairs in chain order, the leaves of the round's scores tree."""
        return [(c.member, c.score) for c in self.credits]


def decide_round(
    checked: Sequence[Update],
    digests: Mapping[str, bytes],
    inputs: RoundInputs,
    spec: TaskSpec,
    rule: AggregationRule,
) -> RoundDecision:
    """Aggregate ``checked`` (chain order) with ``rule`` and credit each member."""
    left_out: dict[str, str] = {}
    if spec.max_update_norm_ratio is not None:
        left_out = change_norm_outliers(checked, inputs.previous, spec.max_update_norm_ratio)
    kept = [u for u in checked if u.member not in left_out]
    ctx = RoundContext(
        round=inputs.round,
        previous=inputs.previous,
        seed=aggregation_seed(inputs.task_id, inputs.round, inputs.model_digest),
        state=inputs.state,
    )
    aggregate = rule.aggregate(canonical_order([(digests[u.member], u) for u in kept]), ctx)
    credits = contribution_credits(
        kept,
        inputs.previous,
        aggregate,
        norm_band=spec.credit.norm_band,
        min_alignment=spec.credit.min_alignment,
        min_progress=spec.credit.min_progress,
    )
    return RoundDecision(aggregate=aggregate, left_out=left_out, credits=credits)
