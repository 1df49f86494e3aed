"""What a local federation runs: the task, its spec, the institutions and their ``[data]``.

The demo, ``fedchain devnet`` and the end-to-end tests all bring up built-in tasks on packaged
data; this is the one place that decides, per task, how many institutions there are, which
built-in partition each holds and what it records (two HAPT institutions in six have no
gyroscope).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from consensus.task_spec import TaskSpec, TrainingSettings
from fedchain.errors import ConfigError
from models.tasks import Task, get_task

DEMO_TASKS: dict[str, tuple[int, int, int]] = {
    # task: (default institutions, fewest, most)
    "heart": (4, 2, 4),
    "hapt": (6, 2, 15),
    "breast": (4, 2, 20),
}
HEART_TRAINING = TrainingSettings(epochs=5, lr=0.05, batch_size=16, seed=7, weight_decay=0.01)
"""The heart demo's rounds: five quick epochs of logistic regression (well under 0.1 s)."""


@dataclass(frozen=True)
class FederationPlan:
    task: Task
    spec: TaskSpec
    institutions: tuple[str, ...]
    data: Mapping[str, Mapping[str, Any]]
    """Each institution's ``[data]`` section, as written into its config."""
    max_samples: int = 50_000
    """The task's cap on a member's reported samples: above every built-in institution (the
    largest, a HAPT group, has about 1,500 windows), so no honest weight is clipped."""

    @property
    def primary_metric(self) -> str:
        return self.task.primary_metric_for(self.spec)


def without_gyroscope(institutions: int) -> int:
    """How many HAPT institutions record only the accelerometer: a third, at least one."""
    return max(1, institutions // 3) if institutions > 1 else 0


def in_range(task_name: str, institutions: int) -> bool:
    """Whether :func:`plan_for` plans ``task_name`` with this many institutions."""
    if task_name not in DEMO_TASKS:
        return False
    _, fewest, most = DEMO_TASKS[task_name]
    return fewest <= institutions <= most


def plan_for(
    task_name: str, institutions: int | None = None, *, seed: int | None = None, name: str = ""
) -> FederationPlan:
    """The plan for a built-in task with ``institutions`` members (None: the task's default).

    ``seed`` (default: the task's own) seeds training and, where the task has one, its data
    split; the simulator passes its ``--seed`` here, so a simulation and a real federation of
    the same task, size and seed train the same institutions from the same spec.
    """
    if task_name not in DEMO_TASKS:
        raise ConfigError(
            f"no local federation is defined for task {task_name!r}; choose one of "
            f"{', '.join(DEMO_TASKS)}"
        )
    default, fewest, most = DEMO_TASKS[task_name]
    n = default if institutions is None else institutions
    if not fewest <= n <= most:
        raise ConfigError(f"task {task_name!r} runs with {fewest}..{most} institutions, not {n}")
    task = get_task(task_name)
    overrides: dict[str, Any] = {"name": name or f"{task_name}-demo"}
    training = HEART_TRAINING if task_name == "heart" else task.default_training()
    task_args: dict[str, Any] = {}
    if "n_institutions" in task.default_task_args():
        task_args["n_institutions"] = n
    if seed is not None:
        training = training.model_copy(update={"seed": seed})
        if "split_seed" in task.default_task_args():
            task_args["split_seed"] = seed
    spec = task.default_spec(training=training, task_args=task_args, **overrides)
    names = tuple(task.builtin_institutions(spec)[:n])
    data: dict[str, dict[str, Any]] = {member: {"partition": member} for member in names}
    if task_name == "hapt":
        for member in names[len(names) - without_gyroscope(len(names)) :]:
            data[member]["modalities"] = ["acc"]
    return FederationPlan(task, spec, names, data)
