"""A Byzantine member's learner: an honest learner whose data and updates an attack changes.

:class:`ByzantineLearner` wraps anything with the node's ``LocalLearner`` shape
(``num_samples``, ``reference_weights()``, ``train(global_weights, round_no)``,
``evaluate(weights)``).  When the wrapped learner is a :class:`models.tasks.Learner`, the
attack's :meth:`~fedchain.attacks.abc.Attack.poison_data` is applied once, to a copy (the
original learner keeps its data).  Each ``train`` runs the honest training, then hands the
attack an :class:`~fedchain.attacks.abc.AttackView` and returns what it crafted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import torch

from consensus.strategies.abc import StateDict
from fedchain.attacks.abc import Attack, AttackView, Weights, as_update, attack_seed
from fedchain.errors import ConfigError, ProtocolError
from models.tasks.learner import Learner

if TYPE_CHECKING:
    from models.privacy import PrivacyBudget
    from peer.node import LocalLearner

log = logging.getLogger("fedchain.attacks")

HonestUpdates = Callable[[int], tuple[Weights, ...] | None]
"""Round number -> the honest members' updates of that round (None: not available)."""


class ByzantineLearner:
    """``ByzantineLearner(inner, attack, member=..., seed=...)``: plays ``attack`` as ``member``.

    ``seed`` is the run's seed (with the round and ``member`` it derives ``view.seed``);
    ``honest_updates`` (simulator only) gives the round's honest updates to attacks that
    declare ``needs_honest_updates``.
    """

    def __init__(
        self,
        inner: LocalLearner,
        attack: Attack,
        *,
        member: str,
        seed: int,
        honest_updates: HonestUpdates | None = None,
    ) -> None:
        poisons = type(attack).poison_data is not Attack.poison_data
        if isinstance(inner, Learner):
            poisoned = attack.poison_data(inner.data)
            if poisoned is not inner.data:
                inner = Learner(inner.task, inner.spec, poisoned, inner.institution)
        elif poisons:
            raise ConfigError(
                f"attack {attack.name!r} poisons local data, which only a models.tasks.Learner "
                f"exposes; {type(inner).__name__} does not"
            )
        self.inner: LocalLearner = inner
        self.attack = attack
        self.member = member
        self.seed = seed
        self._honest_updates = honest_updates

    @property
    def num_samples(self) -> int:
        return self.inner.num_samples

    def reference_weights(self) -> StateDict:
        return self.inner.reference_weights()

    def evaluate(self, weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        return self.inner.evaluate(weights)

    def plan_privacy(self, planned_rounds: int) -> PrivacyBudget | None:
        return self.inner.plan_privacy(planned_rounds)

    def train(self, global_weights: Mapping[str, torch.Tensor], round_no: int) -> StateDict:
        """The honest training, then the attack's crafted update (checked, float32)."""
        honest = self.inner.train(global_weights, round_no)
        others = None
        if self.attack.needs_honest_updates and self._honest_updates is not None:
            others = self._honest_updates(round_no)
        view = AttackView(
            round=round_no,
            global_weights=global_weights,
            honest_update=honest,
            seed=attack_seed(self.seed, round_no, self.member),
            honest_updates=others,
            shared_seed=attack_seed(self.seed, round_no, ""),
        )
        crafted = self.attack.craft(view)
        _check_like(self.attack.name, crafted, global_weights)
        crafted = {k: crafted[k] for k in global_weights}  # in the global model's order
        log.warning(
            "round %d: %s is a Byzantine member (test only): submitting the %r attack's update",
            round_no,
            self.member,
            self.attack.name,
        )
        return as_update(crafted)


def _check_like(name: str, crafted: Mapping[str, torch.Tensor], like: Weights) -> None:
    if set(crafted) != set(like):
        raise ProtocolError(
            f"attack {name!r} crafted tensors {sorted(crafted)}, not the model's {sorted(like)}"
        )
    for key, tensor in crafted.items():
        if tuple(tensor.shape) != tuple(like[key].shape):
            raise ProtocolError(
                f"attack {name!r} crafted {key!r} of shape {tuple(tensor.shape)}, not "
                f"{tuple(like[key].shape)}"
            )
