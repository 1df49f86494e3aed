"""Credit for a round, computed by every honest peer from the round's updates alone.

A member's score is its bounded sample count when its update was *useful*, else 0.  A round
pays credit only when its members moved the model together: when the coordinate-wise median of
their changes is at least ``min_progress`` times the median change's norm.  Once a federation
has converged, members' changes mostly pull toward their own data and cancel out (heart:
progress about 0.8 in round 1, 0.1-0.2 after); there, a sign-flipped update looks like an
honest one, so such rounds pay nobody rather than pay an attacker.  In a round that pays, an
update is useful when all of these hold:

* it passed the update checks and the aggregation rule used it (rule score above 0): a
  rejected update earns nothing;
* its change from the round's global model points the way the other members' changes do:
  cosine with their coordinate-wise median change above ``min_alignment`` (the median of the
  *others*, so neither the member itself nor one attacker among them sets the reference; the
  agreed change would not do, FedAvg lets a large member's flipped update dominate it): a
  sign-flipped, label-flipped or noise update earns nothing;
* its change is at most ``norm_band`` times the round's median change (a member scaling its
  update earns nothing) and at least 1/``norm_band``**2 of it (a free rider sending the model
  back with a little noise earns nothing; the lower bound is looser because a small hospital
  takes fewer local steps: heart's Switzerland, 30 samples, moved 1/4 of the median).

Only updates, the global model and the agreed aggregate go in, so any member or auditor
recomputes the same integers (float64 vectors, correctly rounded sums; the gate is a
comparison, the score an integer).  Members whose data helped get credit in proportion to
their data, so in a clean federation credit shares are data shares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from consensus.strategies.abc import Aggregate, Update
from consensus.strategies.kernels import (
    MemberRanks,
    deltas,
    fixed_dot,
    l2_norm,
    median_of_floats,
)


@dataclass(frozen=True)
class Credit:
    """One member's score for a round and, when it is 0, why."""

    member: str
    score: int
    reason: str | None = None


def contribution_credits(
    updates: Sequence[Update],
    previous: Mapping[str, torch.Tensor],
    aggregate: Aggregate,
    *,
    norm_band: float,
    min_alignment: float,
    min_progress: float,
) -> list[Credit]:
    """A credit for every update in ``updates`` (chain order, bounded sample counts)."""
    if not updates:
        return []
    keys = sorted(previous)
    changes = deltas(updates, previous, keys)
    norms = [l2_norm(c) for c in changes]
    mid = median_of_floats(norms)
    ranks = MemberRanks(changes)  # one sort for the median and every leave-one-out median
    progress = l2_norm(ranks.median()) / mid if mid > 0 else 0.0

    def others_median(i: int) -> torch.Tensor | None:
        """The others' coordinate-wise median change."""
        return ranks.without(i) if len(changes) >= 2 else None

    credits: list[Credit] = []
    for i, u in enumerate(updates):
        reason = _no_credit_reason(
            i, changes[i], norms, mid, progress, aggregate.scores.get(u.member, 0.0), others_median,
            norm_band=norm_band, min_alignment=min_alignment, min_progress=min_progress,
        )  # fmt: skip
        credits.append(Credit(u.member, 0 if reason else u.num_samples, reason))
    return credits


def _no_credit_reason(
    i: int,
    change: torch.Tensor,
    norms: Sequence[float],
    mid: float,
    progress: float,
    rule_score: float,
    others_median: Callable[[int], torch.Tensor | None],
    *,
    norm_band: float,
    min_alignment: float,
    min_progress: float,
) -> str | None:
    """Why update ``i`` earns nothing, or None when it is useful."""
    if not progress >= min_progress:
        return (
            f"the round did not move the model beyond its members' disagreement "
            f"(progress {progress:.3f}, needs >= {min_progress:g})"
        )
    if rule_score <= 0.0:
        return "not used by the aggregation rule"
    size = norms[i]
    if size == 0.0:
        return "no change from the global model"
    if size > norm_band * mid:
        return f"its change is {size / mid:.3g}x the round's median (bound {norm_band:g}x)"
    if size * norm_band**2 < mid:
        return f"its change is 1/{mid / size:.3g} of the round's median (bound 1/{norm_band**2:g})"
    reference = others_median(i)
    if reference is None:
        return None
    ref_norm = l2_norm(reference)
    cosine = fixed_dot(change, reference) / (size * ref_norm) if ref_norm > 0 else 0.0
    if not cosine > min_alignment:
        return (
            f"its change points away from the other members' median change "
            f"(cosine {cosine:.3f}, needs > {min_alignment:g})"
        )
    return None
