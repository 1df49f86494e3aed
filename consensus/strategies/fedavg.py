"""Federated averaging weighted by sample counts, bit-identical on every peer.

Determinism comes from three fixed choices: updates are taken in the order given,
which the node makes canonical (sorted by update digest, not chain order, so
transaction ordering cannot change the result), arithmetic is done in float64 as
separate multiply and add steps (no fused multiply-add, no reductions whose order
could vary), and the result is cast to float32 once at the end.  Any auditor can
reproduce it with NumPy, summing in digest order:
``sum_i(float64(w_i) * n_i) / sum_i(n_i)`` then ``float32``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, StateDict, Update
from fedchain.errors import ProtocolError


def check_updates(updates: Sequence[Update], rule: str) -> list[str]:
    """The common tensor names of ``updates`` (sorted); ProtocolError if none or they differ."""
    if not updates:
        raise ProtocolError(f"{rule} needs at least one valid update; the round has none")
    if any(u.num_samples <= 0 for u in updates):
        raise ProtocolError("every update must report a positive number of samples")
    keys = sorted(updates[0].weights)
    for u in updates[1:]:
        if sorted(u.weights) != keys:
            raise ProtocolError(f"update from {u.member} has different tensor names")
    return keys


def weighted_mean(
    tensors: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float], keys: Sequence[str]
) -> StateDict:
    """``sum_i(float64(t_i) * w_i) / sum_i(w_i)`` per key, summed in the given order, as float32."""
    total = float(sum(weights))
    result: StateDict = {}
    for key in keys:
        acc = torch.zeros_like(tensors[0][key], dtype=torch.float64)
        for t, w in zip(tensors, weights, strict=True):
            acc = acc + t[key].to(torch.float64) * float(w)
        result[key] = (acc / total).to(torch.float32).contiguous()
    return result


class FedAvg(AggregationRule):
    """Weighted mean of the updates, weights proportional to ``num_samples``."""

    name = "fedavg"

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, "FedAvg")
        weights = weighted_mean(
            [u.weights for u in updates], [float(u.num_samples) for u in updates], keys
        )
        return Aggregate(
            weights=weights,
            accepted=tuple(u.member for u in updates),
            scores={u.member: 1.0 for u in updates},
        )
