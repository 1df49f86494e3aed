"""``collude``: every colluding member submits the same crafted update, byte for byte.

With ``g`` the round's global model:

* when the honest members' updates of the round are visible (the simulator provides them, in
  member-name order, the same tuple to every colluder), each colluder sends
  ``g - scale * mean_i(h_i - g)``: the honest members' average change, reversed;
* otherwise (a real peer sees only its own update, which differs between colluders) the
  colluders agree on a pseudo-change ``d ~ N(0, sigma^2)`` per coordinate, drawn from
  ``view.shared_seed`` (the run seed and round, no member name), and each sends ``g - scale * d``.

Either way the colluders' bytes are identical, so the chain-only copy check keeps the first
one in chain order and leaves the others out as copies: the attack measures what a rule does
with one such update, and shows that copies are caught.
"""

from __future__ import annotations

from typing import Any

import torch

from consensus.strategies.abc import StateDict
from fedchain.attacks.abc import Attack, AttackView, change_of, combine, number


class Collude(Attack):
    name = "collude"
    needs_honest_updates = True

    def __init__(self, scale: float = 1.0, sigma: float = 1.0) -> None:
        self.scale = number(self.name, "scale", scale, positive=True)
        self.sigma = number(self.name, "sigma", sigma, positive=True)

    def craft(self, view: AttackView) -> StateDict:
        g = view.global_weights
        if view.honest_updates:
            changes = [change_of(h, g) for h in view.honest_updates]
            mean = {k: sum_in_order([c[k] for c in changes]) / len(changes) for k in g}
            return combine(g, mean, -self.scale)
        gen = torch.Generator().manual_seed(view.shared_seed)
        pseudo = {
            k: self.sigma * torch.randn(g[k].shape, generator=gen, dtype=torch.float64)
            for k in sorted(g)
        }
        return combine(g, pseudo, -self.scale)

    def params(self) -> dict[str, Any]:
        return {"scale": self.scale, "sigma": self.sigma}


def sum_in_order(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The float64 sum of ``tensors``, added one after the other in the given order."""
    acc = torch.zeros_like(tensors[0], dtype=torch.float64)
    for t in tensors:
        acc = acc + t
    return acc
