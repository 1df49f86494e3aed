"""Which records each virtual institution holds.

A task's own built-in partitions come first (``task.builtin_institutions(spec)``, with
``task_args.n_institutions`` set to the number of peers where the task has it).  Where a task
has fewer built-in partitions than the simulation has peers, the simulator splits the task's
packaged data itself (a research setting, recorded in ``record.json``):

* ``hapt`` with 30 peers: one institution per subject (the subject's windows, a seeded 80/20
  train/test split);
* ``hapt`` with any other number: a Dirichlet(alpha) label split of all windows (label skew,
  as in the FL literature), each part split 80/20.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from fedchain.localnet.plan import in_range, plan_for
from models.tasks import InstitutionData, Learner, LocalData, Samples, Task

DIRICHLET_ALPHA = 0.5
TEST_FRACTION = 0.2
MIN_SAMPLES = 20
"""Fewest windows a Dirichlet part may hold (train and test together)."""


@dataclass(frozen=True)
class Population:
    """The learners of a simulation and how their data were drawn."""

    spec: TaskSpec
    learners: dict[str, Learner]
    partition: str
    """"built-in", "per-subject" or "dirichlet(alpha=...)"."""


def _spec(task: Task, seed: int, task_args: dict[str, Any]) -> TaskSpec:
    return task.default_spec(task_args=task_args, training={"seed": seed})


def _builtin(task: Task, peers: int, seed: int) -> Population | None:
    """The demo's own plan (:mod:`fedchain.localnet.plan`) when it covers ``peers``: the same
    spec, partitions and modality sets as ``fedchain demo --task`` with real peers."""
    if not in_range(task.name, peers):
        return None
    plan = plan_for(task.name, peers, seed=seed)
    learners = {
        n: Learner.from_local(task, plan.spec, LocalData.model_validate(plan.data[n]), n)
        for n in plan.institutions
    }
    return Population(plan.spec, learners, "built-in")


def _train_test(index: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    shuffled = rng.permutation(index)
    cut = max(1, round(len(shuffled) * TEST_FRACTION))
    return np.sort(shuffled[cut:]), np.sort(shuffled[:cut])


def _hapt(task: Task, peers: int, seed: int) -> Population:
    from models.partition import DirichletLabelPartitioner
    from models.tasks.hapt import packaged_windows

    windows = packaged_windows()
    spec = _spec(task, seed, {})
    subjects = sorted(set(windows.subjects.tolist()))
    if peers == len(subjects):
        parts = [np.flatnonzero(windows.subjects == s) for s in subjects]
        names = [f"subject-{s}" for s in subjects]
        how = "per-subject"
    else:
        parts = DirichletLabelPartitioner(DIRICHLET_ALPHA, min_size=MIN_SAMPLES).split(
            windows.labels, peers, seed
        )
        names = [f"site-{i}" for i in range(1, peers + 1)]
        how = f"dirichlet(alpha={DIRICHLET_ALPHA})"
    rng = np.random.default_rng(seed)
    everything = windows.modalities()
    learners = {}
    for name, part in zip(names, parts, strict=True):
        train, test = _train_test(np.asarray(part), rng)
        data = InstitutionData(
            train=Samples(
                {m: np.ascontiguousarray(a[train]) for m, a in everything.items()},
                windows.labels[train],
            ),
            test=Samples(
                {m: np.ascontiguousarray(a[test]) for m, a in everything.items()},
                windows.labels[test],
            ),
            modalities=tuple(sorted(everything)),
        )
        learners[name] = Learner(task, spec, data, name)
    return Population(spec, learners, how)


def population(task: Task, peers: int, seed: int) -> Population:
    """``peers`` learners of ``task``, their data drawn reproducibly from ``seed``."""
    found = _builtin(task, peers, seed)
    if found is not None:
        return found
    if task.name == "hapt":
        return _hapt(task, peers, seed)
    raise ConfigError(
        f"task {task.name!r} has no built-in partition into {peers} institutions; use fewer "
        "peers (hapt can be split among any number)"
    )
