"""The task layer: what a federation trains and how each institution reads its own data.

Public API (see models/README.md, "Tasks"):

* ``get_task(name) -> Task``, ``available_tasks()`` — built-ins ``heart``, ``hapt``,
  ``breast`` and the bring-your-own-data tasks ``ehr-csv``, ``imaging``, ``signals``, plus
  plug-ins from the ``fedchain.tasks`` entry-point group;
* ``Task`` (``name``, ``primary_metric``, ``default_spec(**overrides)``,
  ``builtin_institutions(spec)``, ``load(spec, local)``), ``InstitutionData``, ``Samples``;
* ``LocalData`` — the peer config's ``[data]`` section;
* ``Learner(task, spec, data, institution)`` and ``initial_weights(spec)``,
  ``reference_weights(spec)``, ``round_seed(seed, round_no, institution)``;
* ``use_deterministic_torch()`` — call once in peers and the simulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from models.tasks.abc import InstitutionData, Task
    from models.tasks.determinism import use_deterministic_torch
    from models.tasks.learner import Learner, initial_weights, reference_weights, round_seed
    from models.tasks.local_data import LocalData
    from models.tasks.registry import ENTRY_POINT_GROUP, available_tasks, get_task
    from models.training import Samples

# Imported lazily: the peer's config reads ``LocalData`` without loading torch or pandas.
_HOMES = {
    "ENTRY_POINT_GROUP": "models.tasks.registry",
    "InstitutionData": "models.tasks.abc",
    "Learner": "models.tasks.learner",
    "LocalData": "models.tasks.local_data",
    "Samples": "models.training",
    "Task": "models.tasks.abc",
    "available_tasks": "models.tasks.registry",
    "get_task": "models.tasks.registry",
    "initial_weights": "models.tasks.learner",
    "reference_weights": "models.tasks.learner",
    "round_seed": "models.tasks.learner",
    "use_deterministic_torch": "models.tasks.determinism",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'models.tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)


__all__ = [
    "ENTRY_POINT_GROUP",
    "InstitutionData",
    "Learner",
    "LocalData",
    "Samples",
    "Task",
    "available_tasks",
    "get_task",
    "initial_weights",
    "reference_weights",
    "round_seed",
    "use_deterministic_torch",
]
