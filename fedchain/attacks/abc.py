"""The attack interface: what a Byzantine member of the federation sees, and what it sends.

An attack is a function of what such a member can see: the round's global model, its own
honest update (trained as usual), its own local data, and — in the simulator only — the
honest updates the other members submitted in the same round (updates are public to members).
It either poisons the member's local data once (:meth:`Attack.poison_data`, before any
training) or replaces the trained update by a crafted one (:meth:`Attack.craft`), or both.

Attacks exist to test aggregation rules; a real institution's peer refuses to play one
unless the test-only ``[testing]`` config table is allowed (``FEDCHAIN_ALLOW_ATTACKS=1``).
"""

from __future__ import annotations

import hashlib
import math
from abc import ABC
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from consensus.strategies.abc import StateDict
from fedchain.errors import ConfigError
from models.tasks.abc import InstitutionData

_SEED_DOMAIN = b"fedchain/attack-seed/v1"

Weights = Mapping[str, torch.Tensor]


def attack_seed(run_seed: int, round_no: int, member: str) -> int:
    """``int.from_bytes(sha256("fedchain/attack-seed/v1" 0 run_seed 0 round 0 member)[:8]) >> 1``.

    ``member`` is the institution's name; the empty name gives the seed every Byzantine member
    of the run shares in that round (what colluders agree on).  Below 2**63.
    """
    message = b"\x00".join(
        [_SEED_DOMAIN, str(run_seed).encode(), str(round_no).encode(), member.encode()]
    )
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") >> 1


@dataclass(frozen=True)
class AttackView:
    """What a Byzantine member knows when it crafts its update for one round."""

    round: int
    global_weights: Weights
    """The round's agreed global model (what every member trains from)."""
    honest_update: Weights
    """This member's own update, trained honestly (on its possibly poisoned data)."""
    seed: int
    """:func:`attack_seed` of the run seed, the round and this member's name."""
    honest_updates: tuple[Weights, ...] | None = None
    """The honest members' updates of this round (simulator only; None where not available)."""
    shared_seed: int = 0
    """:func:`attack_seed` with no member name: equal for every Byzantine member of the round."""


class Attack(ABC):
    """One attack: subclasses set ``name`` and override :meth:`craft` and/or :meth:`poison_data`.

    Parameters are keyword arguments of ``__init__``, validated with a ConfigError naming the
    bad one (see :func:`number`).  :meth:`craft` must return float32, contiguous tensors with
    the global model's names and shapes (:class:`~fedchain.attacks.learner.ByzantineLearner`
    checks it).
    """

    name: ClassVar[str]
    needs_honest_updates: ClassVar[bool] = False
    """True when :meth:`craft` uses ``view.honest_updates`` (the simulator then provides them)."""

    def poison_data(self, data: InstitutionData) -> InstitutionData:
        """The local data the member trains on (default: unchanged)."""
        return data

    def craft(self, view: AttackView) -> StateDict:
        """The update the member submits (default: its honest update)."""
        return as_update(view.honest_update)

    def params(self) -> dict[str, Any]:
        """The attack's parameters, for records (default: none)."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Name and parameters, for records and logs."""
        return {"name": self.name, "params": self.params()}


def number(attack: str, param: str, value: Any, *, positive: bool = False) -> float:
    """``value`` as a finite float (``> 0`` if ``positive``); ConfigError naming the parameter."""
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if ok and math.isfinite(value) and (value > 0 or not positive):
        return float(value)
    need = "a finite number > 0" if positive else "a finite number"
    raise ConfigError(f"attack {attack!r}: parameter {param!r} must be {need}, got {value!r}")


def as_update(weights: Weights) -> StateDict:
    """Contiguous float32 clones of ``weights`` (what a member submits)."""
    return {k: v.detach().to(torch.float32).clone().contiguous() for k, v in weights.items()}


def combine(global_weights: Weights, change: Weights, factor: float) -> StateDict:
    """``global + factor * change`` per tensor, in float64, cast to float32 once."""
    return {
        k: (g.to(torch.float64) + factor * change[k].to(torch.float64))
        .to(torch.float32)
        .contiguous()
        for k, g in global_weights.items()
    }


def change_of(update: Weights, global_weights: Weights) -> dict[str, torch.Tensor]:
    """``update - global`` per tensor, in float64."""
    return {k: update[k].to(torch.float64) - g.to(torch.float64) for k, g in global_weights.items()}
