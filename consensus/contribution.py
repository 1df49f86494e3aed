"""Credit for a round, computed by every honest peer from the round's updates alone.

A member's score is its bounded sample count when its update was *useful*, else 0.  A round
pays credit only when it moved the model: when the agreed change is at least ``min_progress``
times the round's median member change.  Once a federation has converged, members' changes
mostly pull toward their own data and cancel out (heart: progress 0.8 in round 1, 0.1-0.2
after); there, a sign-flipped update looks like an honest one, so such rounds pay nobody rather
than pay an attacker.  In a round that pays, an update is useful when all of these hold:

* it passed the update checks and the aggregation rule used it (rule score above 0): a
  rejected update earns nothing;
* its change from the round's global model points the way the agreed change does (cosine
  above ``min_alignment``): a sign-flipped, label-flipped or noise update earns nothing;
* its change is neither tiny nor huge against the round's median change (within the factor
  ``norm_band`` either way): a free rider sending the model back with a little noise, or a
  member scaling its update, earns nothing.

Only updates, the global model and the agreed aggregate go in, so any member or auditor
recomputes the same integers (float64 dot products summed in a fixed order; the gate is a
comparison, the score an integer).  Members whose data helped get credit in proportion to
their data, so in a clean federation credit shares are data shares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from consensus.strategies.abc import Aggregate, Update
from consensus.vectors import change_vector, median, norm, ordered_dot


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
    agreed = change_vector(aggregate.weights, previous)
    agreed_norm = norm(agreed)
    changes = {u.member: change_vector(u.weights, previous) for u in updates}
    norms = {m: norm(c) for m, c in changes.items()}
    mid = median(list(norms.values()))
    progress = agreed_norm / mid if mid > 0 else 0.0
    credits: list[Credit] = []
    for u in updates:
        size = norms[u.member]
        reason: str | None = None
        if not progress >= min_progress:
            reason = (
                f"the round did not move the model beyond its members' disagreement "
                f"(progress {progress:.3f}, needs >= {min_progress:g})"
            )
        elif aggregate.scores.get(u.member, 0.0) <= 0.0:
            reason = "not used by the aggregation rule"
        elif size == 0.0 or agreed_norm == 0.0:
            reason = "no change from the global model"
        else:
            cosine = ordered_dot(changes[u.member], agreed) / (size * agreed_norm)
            if not cosine > min_alignment:
                reason = (
                    f"its change points away from the agreed one "
                    f"(cosine {cosine:.3f}, needs > {min_alignment:g})"
                )
            elif size > norm_band * mid:
                reason = (
                    f"its change is {size / mid:.3g}x the round's median (bound {norm_band:g}x)"
                )
            elif size * norm_band < mid:
                reason = (
                    f"its change is 1/{mid / size:.3g} of the round's median "
                    f"(bound 1/{norm_band:g})"
                )
        credits.append(Credit(u.member, 0 if reason else u.num_samples, reason))
    return credits
