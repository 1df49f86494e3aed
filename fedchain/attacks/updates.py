"""Attacks that replace the trained update by one crafted from it and the global model.

With ``g`` the round's global model and ``h`` the member's honest update (``h - g`` its change):

* ``sign-flip``: ``g - scale * (h - g)``, the reversed change (``scale`` default 1);
* ``scaling``: ``g + factor * (h - g)``, the change scaled up (``factor`` default 100);
* ``gaussian-noise``: ``h + N(0, sigma^2)`` per coordinate (``sigma`` default 1.0, about the size
  of the built-in models' weights: enough to visibly hurt plain FedAvg), drawn from a
  ``torch.Generator`` seeded with ``view.seed``, tensor by tensor in sorted name order;
* ``free-ride``: ``g`` unchanged (the chain-only check leaves it out as a free rider).

Arithmetic is float64, cast to float32 once, so a crafted update is reproducible bit for bit.
"""

from __future__ import annotations

from typing import Any

import torch

from consensus.strategies.abc import StateDict
from fedchain.attacks.abc import Attack, AttackView, as_update, change_of, combine, number


class SignFlip(Attack):
    name = "sign-flip"

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = number(self.name, "scale", scale, positive=True)

    def craft(self, view: AttackView) -> StateDict:
        change = change_of(view.honest_update, view.global_weights)
        return combine(view.global_weights, change, -self.scale)

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale}


class Scaling(Attack):
    name = "scaling"

    def __init__(self, factor: float = 100.0) -> None:
        self.factor = number(self.name, "factor", factor)

    def craft(self, view: AttackView) -> StateDict:
        change = change_of(view.honest_update, view.global_weights)
        return combine(view.global_weights, change, self.factor)

    def params(self) -> dict[str, Any]:
        return {"factor": self.factor}


class GaussianNoise(Attack):
    name = "gaussian-noise"

    def __init__(self, sigma: float = 1.0) -> None:
        self.sigma = number(self.name, "sigma", sigma, positive=True)

    def craft(self, view: AttackView) -> StateDict:
        gen = torch.Generator().manual_seed(view.seed)
        out: StateDict = {}
        for key in sorted(view.honest_update):  # a fixed draw order
            h = view.honest_update[key]
            noise = torch.randn(h.shape, generator=gen, dtype=torch.float64)
            out[key] = (h.to(torch.float64) + self.sigma * noise).to(torch.float32).contiguous()
        return {k: out[k] for k in view.honest_update}

    def params(self) -> dict[str, Any]:
        return {"sigma": self.sigma}


class FreeRide(Attack):
    name = "free-ride"

    def craft(self, view: AttackView) -> StateDict:
        return as_update(view.global_weights)
