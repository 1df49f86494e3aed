"""``imaging``: federate square images (``.npz`` or a PNG folder) with a small CNN.

``task_args``: ``image_size`` (h = w), ``channels`` (1 grayscale, 3 RGB), ``classes``. Model
``image_cnn`` (no batch normalisation). Each institution points ``[data] path`` at its ``.npz``
or PNG folder (``models.tasks.formats.images``).
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
from models.tasks.formats.images import read_image_npz, read_png_folder
from models.tasks.formats.split import split_samples
from models.tasks.local_data import LocalData


class ImageArgs(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    image_size: int = Field(ge=8, le=512)
    channels: int = Field(default=1, ge=1, le=4)
    classes: int = Field(default=2, ge=2, le=1000)


def image_args(task_args: Mapping[str, Any], task: str) -> ImageArgs:
    try:
        return ImageArgs.model_validate(dict(task_args))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"task {task!r}: task_args.{where}: {first['msg']}") from None


def load_images(task: Task, spec: TaskSpec, local: LocalData, args: ImageArgs) -> InstitutionData:
    """An institution's images (npz or PNG folder), split and checked against ``spec``."""
    if local.modalities is not None:
        raise ConfigError(f"data.modalities does not apply to the imaging task {task.name!r}")
    fmt = local.data_format()
    path = local.existing_path()
    if fmt == "npz":
        x, y = read_image_npz(path, local.where)
    elif fmt == "png-folder":
        x, y = read_png_folder(path, local.where)
    else:
        raise ConfigError(
            f"{local.where}: task {task.name!r} reads .npz or a PNG folder, not {fmt!r}"
        )
    expected = (args.channels, args.image_size, args.image_size)
    if tuple(x.shape[1:]) != expected:
        raise DataError(
            f"{local.where}: images are {list(x.shape[1:])} (channels, h, w), the task expects "
            f"{list(expected)}; resize or convert the images"
        )
    train, test = split_samples(x, y, local.test_fraction, local.split_seed)
    data = InstitutionData(train=train, test=test)
    check_enough(data, args.classes, local.where)
    check_fits_model(spec, data, local.where)
    return data


class ImagingTask(Task):
    name = "imaging"
    primary_metric: ClassVar[PrimaryMetric] = "auroc"
    description = "square images from an .npz or a PNG folder, classified by a small CNN"

    def default_task_args(self) -> dict[str, Any]:
        return {"image_size": 28, "channels": 1, "classes": 2}

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:
        image_args(task_args, self.name)

    def default_model(self, task_args: Mapping[str, Any]) -> ModelSpec:
        args = image_args(task_args, self.name)
        return ModelSpec(
            arch="image_cnn",
            kwargs={
                "num_classes": args.classes,
                "in_channels": args.channels,
                "image_size": args.image_size,
            },
        )

    def default_training(self) -> TrainingSettings:
        return TrainingSettings(epochs=3, lr=3e-4, batch_size=16, seed=0)

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        return "auroc" if image_args(spec.task_args, self.name).classes == 2 else "macro_f1"

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        return []

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        no_partitions(self, local)
        return load_images(self, spec, local, image_args(spec.task_args, self.name))
