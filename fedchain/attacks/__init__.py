"""Attacks as plug-ins: a Byzantine member of the federation, for tests and benchmarks.

See :mod:`fedchain.attacks.abc` for the interface, :mod:`fedchain.attacks.registry` for the
built-ins and the ``fedchain.attacks`` entry-point group, and
:class:`~fedchain.attacks.learner.ByzantineLearner` for how a peer or the simulator plays one.
"""

from fedchain.attacks.abc import Attack, AttackView, attack_seed
from fedchain.attacks.learner import ByzantineLearner
from fedchain.attacks.registry import ENTRY_POINT_GROUP, attack_names, get_attack

__all__ = [
    "ENTRY_POINT_GROUP",
    "Attack",
    "AttackView",
    "ByzantineLearner",
    "attack_names",
    "attack_seed",
    "get_attack",
]
