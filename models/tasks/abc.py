"""The task interface: how a federation's agreed task meets one institution's own data.

A :class:`Task` names a kind of data and the model trained on it. The consortium publishes a
:class:`~consensus.task_spec.TaskSpec` (``Task.default_spec`` gives the usual one); each
institution then calls ``Task.load(spec, local)`` with its own ``[data]`` section
(:class:`~models.tasks.local_data.LocalData`) and gets an :class:`InstitutionData` that is
checked to fit the spec (feature count, image shape, modalities, classes).

Task code is only ever installed locally (built in, or a plug-in from the ``fedchain.tasks``
entry-point group); no code ever comes from another peer, only the spec's data.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from consensus.task_spec import ModelSpec, TaskSpec, TrainingSettings
from fedchain.errors import ConfigError, DataError
from models.tasks.local_data import LocalData
from models.training import Samples

PrimaryMetric = Literal["auroc", "macro_f1"]


@dataclass(frozen=True)
class InstitutionData:
    """One institution's train and test samples, and the modalities it holds (``()``: one array)."""

    train: Samples
    test: Samples
    modalities: tuple[str, ...] = ()

    @property
    def num_samples(self) -> int:
        """Training samples (what the institution reports with its update)."""
        return self.train.size


class Task(ABC):
    """A kind of data plus the model a federation trains on it (one file per task).

    Subclasses set ``name`` and ``primary_metric`` and implement the four hooks below;
    ``default_spec`` then assembles a spec from them.
    """

    name: ClassVar[str]
    primary_metric: ClassVar[PrimaryMetric]
    description: ClassVar[str] = ""

    # --- hooks ---------------------------------------------------------------------------
    def default_task_args(self) -> dict[str, Any]:
        """The task parameters a consortium gets unless it overrides them."""
        return {}

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:  # noqa: B027
        """Raise ConfigError if ``task_args`` cannot describe this task."""

    @abstractmethod
    def default_model(self, task_args: Mapping[str, Any]) -> ModelSpec:
        """The model for these task parameters (keyword arguments derived from the data)."""

    @abstractmethod
    def default_training(self) -> TrainingSettings:
        """Per-round training settings: short on two shared CPU cores."""

    @abstractmethod
    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        """Names of the built-in partitions (demos, simulator); empty for own data only."""

    @abstractmethod
    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        """This institution's data, validated against ``spec`` (DataError/ConfigError if not)."""

    # --- shared ------------------------------------------------------------------------------
    def default_spec(self, **overrides: Any) -> TaskSpec:
        """The spec a consortium would publish for this task.

        ``overrides`` are TaskSpec fields; ``task_args`` is merged onto the defaults,
        ``training`` may be a TrainingSettings or a dict of fields merged onto the defaults,
        and the model (unless given) is derived from the resulting task_args.
        """
        task_args = {**self.default_task_args(), **dict(overrides.pop("task_args", {}) or {})}
        self.check_task_args(task_args)
        training = overrides.pop("training", None)
        if training is None:
            training = self.default_training()
        elif isinstance(training, Mapping):
            training = self.default_training().model_copy(update=dict(training))
            training = TrainingSettings.model_validate(training.model_dump())
        model = overrides.pop("model", None) or self.default_model(task_args)
        fields = {"name": self.name, **overrides}
        return TaskSpec(
            task=self.name, task_args=task_args, model=model, training=training, **fields
        )

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        """The headline metric for ``spec`` (generic tasks: by its number of classes)."""
        return self.primary_metric

    def check_spec(self, spec: TaskSpec) -> None:
        """ConfigError unless ``spec`` is a spec of this task with valid task_args."""
        if spec.task != self.name:
            raise ConfigError(f"task spec is for task {spec.task!r}, not {self.name!r}")
        self.check_task_args(spec.task_args)


def no_partitions(task: Task, local: LocalData) -> None:
    """ConfigError for a task without built-in partitions when ``[data]`` names one."""
    if local.partition is not None:
        raise ConfigError(
            f"{local.where}: task {task.name!r} has no built-in partitions; set data.path to "
            "this institution's own files"
        )


def check_fits_model(spec: TaskSpec, data: InstitutionData, where: str) -> None:
    """DataError unless the agreed model accepts the data and outputs one logit per class.

    A forward pass on two training samples catches any shape the task-specific checks missed.
    """
    from models.registry import init_model
    from models.training import predict_logits

    model = init_model(spec.model.model_dump(), seed=0)  # forks the RNG: the caller's is untouched
    x = data.train.x
    head = np.asarray(x[:2]) if isinstance(x, np.ndarray) else {m: a[:2] for m, a in x.items()}
    try:
        logits = predict_logits(model, head)
    except (RuntimeError, ValueError, KeyError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"{where}: the data do not fit the agreed model {spec.model.arch!r} ({first}); "
            "check the shapes against the task spec"
        ) from None
    finally:
        del model
    classes = num_classes_of(spec)
    if logits.shape[1:] != (classes,):
        raise DataError(
            f"{where}: the agreed model gives {logits.shape[1:]} outputs, not {classes}"
        )


def num_classes_of(spec: TaskSpec) -> int:
    """The model's number of classes (``num_classes`` kwarg; logistic regression defaults 2)."""
    return int(spec.model.kwargs.get("num_classes", 2))


def check_labels(samples: Samples, classes: int, where: str, *, split: str) -> None:
    """DataError unless labels are integers in ``0..classes-1``."""
    y = np.asarray(samples.y)
    if y.size and (y.min() < 0 or y.max() >= classes):
        bad = int(y[(y < 0) | (y >= classes)][0])
        raise DataError(
            f"{where}: {split} label {bad} is outside 0..{classes - 1} (the task has {classes} "
            "classes); fix the labels or the task's class count"
        )


def check_enough(
    data: InstitutionData, classes: int, where: str, *, min_train: int = 10, min_test: int = 2
) -> None:
    """DataError unless there are enough samples and (binary tasks) both classes in train."""
    check_labels(data.train, classes, where, split="train")
    check_labels(data.test, classes, where, split="test")
    if data.train.size < min_train or data.test.size < min_test:
        raise DataError(
            f"{where}: {data.train.size} training and {data.test.size} test samples; need at "
            f"least {min_train} and {min_test}: add records or change data.test_fraction"
        )
    present = set(np.unique(data.train.y).tolist())
    if classes == 2 and present != {0, 1}:
        raise DataError(
            f"{where}: the training split holds only class {sorted(present)}; a binary task "
            "needs both classes 0 and 1 in training: add records of the other class"
        )
