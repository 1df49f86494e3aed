"""``signals``: federate multi-modal time series (e.g. wearables) with attention fusion.

``task_args``: ``modalities`` ({name: {"channels": c, "length": t}}) and ``classes``. Model
``fusion``: one 1-D CNN encoder per modality and attention over the modalities present, so an
institution that records only some modalities (``[data] modalities = ["acc"]``) still trains
the shared model. Files: ``models.tasks.formats.signals``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from consensus.task_spec import ModelSpec, TaskSpec, TrainingSettings
from fedchain.errors import ConfigError, DataError
from models.tasks.abc import (
    InstitutionData,
    PrimaryMetric,
    Task,
    check_enough,
    check_fits_model,
    no_partitions,
)
from models.tasks.formats.signals import read_signals_npz
from models.tasks.formats.split import split_samples
from models.tasks.local_data import LocalData


class ModalityShape(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: int = Field(ge=1, le=1024)
    length: int = Field(ge=8, le=1_000_000)


class SignalArgs(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    modalities: dict[str, ModalityShape] = Field(min_length=1)
    classes: int = Field(ge=2, le=1000)


def signal_args(task_args: Mapping[str, Any], task: str) -> SignalArgs:
    try:
        return SignalArgs.model_validate(dict(task_args))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"task {task!r}: task_args.{where}: {first['msg']}") from None


def held_modalities(task: Task, args: SignalArgs, local: LocalData) -> tuple[str, ...]:
    """The modalities this institution holds: ``data.modalities`` or all of the task's."""
    if local.modalities is None:
        return tuple(args.modalities)
    unknown = [m for m in local.modalities if m not in args.modalities]
    if unknown:
        raise ConfigError(
            f"data.modalities names {unknown}, which task {task.name!r} does not have; choose "
            f"from {list(args.modalities)}"
        )
    return tuple(m for m in args.modalities if m in local.modalities)


def fusion_model(modalities: Mapping[str, ModalityShape], classes: int) -> ModelSpec:
    return ModelSpec(
        arch="fusion",
        kwargs={
            "modalities": {
                m: {"kind": "signal", "in_channels": s.channels, "width": 32}
                for m, s in modalities.items()
            },
            "num_classes": classes,
            "embed_dim": 64,
            "modality_dropout": 0.2 if len(modalities) > 1 else 0.0,
        },
    )


def check_signal_data(
    task: Task, spec: TaskSpec, data: InstitutionData, args: SignalArgs, where: str
) -> None:
    for split in (data.train, data.test):
        if not isinstance(split.x, Mapping):
            raise DataError(f"{where}: task {task.name!r} needs {{modality: array}} input")
        for name, array in split.x.items():
            shape = args.modalities[name]
            if tuple(array.shape[1:]) != (shape.channels, shape.length):
                raise DataError(
                    f"{where}: modality {name!r} is {list(array.shape[1:])} (channels, length), "
                    f"the task expects {[shape.channels, shape.length]}; reshape or resample it"
                )
    check_enough(data, args.classes, where)
    check_fits_model(spec, data, where)


def load_signals(task: Task, spec: TaskSpec, local: LocalData, args: SignalArgs) -> InstitutionData:
    held = held_modalities(task, args, local)
    fmt = local.data_format()
    if fmt != "npz":
        raise ConfigError(f"{local.where}: task {task.name!r} reads an .npz, not {fmt!r}")
    x, y = read_signals_npz(local.existing_path(), held, local.where)
    train, test = split_samples(x, y, local.test_fraction, local.split_seed)
    data = InstitutionData(train=train, test=test, modalities=held)
    check_signal_data(task, spec, data, args, local.where)
    return data


class SignalsTask(Task):
    name = "signals"
    primary_metric: ClassVar[PrimaryMetric] = "macro_f1"
    description = "multi-modal time series from an .npz, attention fusion of 1-D CNN encoders"

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:
        signal_args(task_args, self.name)

    def default_model(self, task_args: Mapping[str, Any]) -> ModelSpec:
        args = signal_args(task_args, self.name)
        return fusion_model(args.modalities, args.classes)

    def default_training(self) -> TrainingSettings:
        return TrainingSettings(epochs=1, lr=1e-3, batch_size=64, seed=0)

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        return "auroc" if signal_args(spec.task_args, self.name).classes == 2 else "macro_f1"

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        return []

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        no_partitions(self, local)
        return load_signals(self, spec, local, signal_args(spec.task_args, self.name))
