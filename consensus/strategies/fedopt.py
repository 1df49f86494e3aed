"""Adaptive server optimizers: FedAdam and FedYogi (Reddi et al., "Adaptive Federated
Optimization", ICLR 2021, Algorithm 2, without bias correction).

Each round, with ``x`` the round's global model and ``D = FedAvg(updates) - x`` the
pseudo-gradient (all float64)::

    m = beta1 * m + (1 - beta1) * D
    v = beta2 * v + (1 - beta2) * D * D                      # FedAdam
    v = v - (1 - beta2) * (D * D) * sign(v - D * D)          # FedYogi
    x' = x + eta * m / (sqrt(v) + tau)

``m`` and ``v`` are the rule's state, carried between rounds in the agreed content as float32
tensors ``"m/<key>"`` and ``"v/<key>"`` (zeros in round 1, an empty ``ctx.state``; the paper
allows ``v`` to start at ``tau**2`` or above, zeros keep round 1 equal for both rules).

Determinism: the FedAvg step sums members in canonical order in float64; every other step is
element-wise (IEEE-rounded per element, ``sqrt`` included), in the order written above; the new
weights and state are cast to float32 once.  Defaults are the paper's fixed ``beta1 = 0.9``,
``beta2 = 0.99`` and ``tau = 1e-3``; the paper tunes the server learning rate per task, the
default ``server_lr = 0.01`` is a conservative choice from its grid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.kernels import (
    Vector,
    check_updates,
    flatten,
    unflatten,
    update_vectors,
    weighted_mean_vector,
)
from consensus.strategies.params import make_aggregate, real, zeros_like_model
from fedchain.errors import ProtocolError


class FedOpt(AggregationRule):
    """Base of the adaptive server optimizers; subclasses define the second-moment update."""

    def __init__(
        self, server_lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3
    ) -> None:
        self.server_lr = real(self.name, "server_lr", server_lr, low=0.0, low_open=True)
        self.beta1 = real(self.name, "beta1", beta1, low=0.0, high=1.0, high_open=True)
        self.beta2 = real(self.name, "beta2", beta2, low=0.0, high=1.0, high_open=True)
        self.tau = real(self.name, "tau", tau, low=0.0, low_open=True)

    def second_moment(self, v: Vector, grad_sq: Vector) -> Vector:
        """The new ``v`` from the previous ``v`` and ``D * D``."""
        raise NotImplementedError

    def state_names(self, weights: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {**zeros_like_model(weights, "m/"), **zeros_like_model(weights, "v/")}

    def _moments(
        self, ctx: RoundContext, keys: Sequence[str], reference: Mapping[str, torch.Tensor]
    ) -> tuple[Vector, Vector]:
        expected = self.state_names({k: reference[k] for k in keys})
        if not ctx.state:
            state: Mapping[str, torch.Tensor] = expected
        else:
            state = ctx.state
            if sorted(state) != sorted(expected):
                raise ProtocolError(f"{self.name} state must hold exactly m/<key> and v/<key>")
            for name, ref in expected.items():
                if state[name].shape != ref.shape:
                    raise ProtocolError(f"{self.name} state {name!r} has the wrong shape")
        m = flatten({k: state["m/" + k] for k in keys}, keys)
        v = flatten({k: state["v/" + k] for k in keys}, keys)
        return m, v

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        keys = check_updates(updates, self.name)
        reference = updates[0].weights
        if any(k not in ctx.previous for k in keys):
            raise ProtocolError(f"{self.name} needs the round's global model for every tensor")
        x = flatten(ctx.previous, keys)
        mean = weighted_mean_vector(update_vectors(updates, keys), [u.num_samples for u in updates])
        grad = mean - x
        m, v = self._moments(ctx, keys, reference)
        m = self.beta1 * m + (1.0 - self.beta1) * grad
        v = self.second_moment(v, grad * grad)
        new = x + self.server_lr * m / (torch.sqrt(v) + self.tau)
        state = {
            **{"m/" + k: t for k, t in unflatten(m, reference, keys).items()},
            **{"v/" + k: t for k, t in unflatten(v, reference, keys).items()},
        }
        return make_aggregate(updates, unflatten(new, reference, keys), [1.0] * len(updates), state)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "server_lr": self.server_lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "tau": self.tau,
        }


class FedAdam(FedOpt):
    """``v = beta2 * v + (1 - beta2) * D^2``."""

    name = "fedadam"

    def second_moment(self, v: Vector, grad_sq: Vector) -> Vector:
        return self.beta2 * v + (1.0 - self.beta2) * grad_sq


class FedYogi(FedOpt):
    """``v = v - (1 - beta2) * D^2 * sign(v - D^2)``."""

    name = "fedyogi"

    def second_moment(self, v: Vector, grad_sq: Vector) -> Vector:
        return v - (1.0 - self.beta2) * grad_sq * torch.sign(v - grad_sq)
