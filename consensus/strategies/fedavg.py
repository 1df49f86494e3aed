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

from collections.abc import Sequence

import torch

from consensus.strategies.abc import AggregationStrategy, StateDict, Update
from fedchain.errors import ProtocolError


class FedAvg(AggregationStrategy):
    """Weighted mean of the updates, weights proportional to ``num_samples``."""

    name = "fedavg"

    def aggregate(self, updates: Sequence[Update]) -> StateDict:
        if not updates:
            raise ProtocolError("FedAvg needs at least one valid update; the round has none")
        total = sum(u.num_samples for u in updates)
        if any(u.num_samples <= 0 for u in updates):
            raise ProtocolError("every update must report a positive number of samples")
        keys = sorted(updates[0].weights)
        for u in updates[1:]:
            if sorted(u.weights) != keys:
                raise ProtocolError(f"update from {u.member} has different tensor names")
        result: StateDict = {}
        for key in keys:
            acc = torch.zeros_like(updates[0].weights[key], dtype=torch.float64)
            for u in updates:
                term = u.weights[key].to(torch.float64) * float(u.num_samples)
                acc = acc + term
            result[key] = (acc / float(total)).to(torch.float32).contiguous()
        return result
