"""``breast``: BreastMNIST ultrasound (28×28, benign/normal vs malignant), a small CNN.

Built-in partitions ``site-1`` .. ``site-N`` (``task_args``: ``n_institutions`` 3, ``alpha``
0.5, ``split_seed`` 0): the official training split shared by a Dirichlet(alpha) over labels
(label skew, at least 20 images each, as in the learning bench), and the official test split
shared IID, both drawn from ``split_seed``. Own images: an ``.npz`` or a PNG folder of 28×28
grayscale images (``models.tasks.formats.images``), label 0 malignant, 1 normal or benign.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

from consensus.task_spec import TaskSpec, TrainingSettings
from fedchain.errors import ConfigError
from models.datasets.breast import ImageSplits, load_breastmnist
from models.partition import DirichletLabelPartitioner, IIDPartitioner
from models.tasks.abc import InstitutionData, PrimaryMetric, check_fits_model
from models.tasks.imaging import ImagingTask, image_args, load_images
from models.tasks.local_data import LocalData
from models.training import Samples

MIN_TRAIN_IMAGES = 20


@functools.lru_cache(maxsize=1)
def packaged_splits() -> ImageSplits:
    return load_breastmnist()


class BreastTask(ImagingTask):
    name = "breast"
    primary_metric: ClassVar[PrimaryMetric] = "auroc"
    description = "BreastMNIST: 28×28 ultrasound, Dirichlet label-skewed sites, small CNN"

    def default_task_args(self) -> dict[str, Any]:
        return {
            "image_size": 28,
            "channels": 1,
            "classes": 2,
            "n_institutions": 3,
            "alpha": 0.5,
            "split_seed": 0,
        }

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:
        args = image_args(task_args, self.name)
        if (args.image_size, args.channels, args.classes) != (28, 1, 2):
            raise ConfigError("task 'breast': images are 28×28, 1 channel, 2 classes")
        n, alpha = task_args.get("n_institutions", 3), task_args.get("alpha", 0.5)
        seed = task_args.get("split_seed", 0)
        if not isinstance(n, int) or not 1 <= n <= 20:
            raise ConfigError(f"task 'breast': task_args.n_institutions must be 1..20, got {n!r}")
        if not isinstance(alpha, int | float) or not alpha > 0:
            raise ConfigError(f"task 'breast': task_args.alpha must be > 0, got {alpha!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"task 'breast': task_args.split_seed must be >= 0, got {seed!r}")

    def default_training(self) -> TrainingSettings:
        # The learning bench's federated setting: 3 local epochs of Adam 3e-4, batch 16.
        return TrainingSettings(epochs=3, lr=3e-4, batch_size=16, seed=0)

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        return "auroc"

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        n = int(spec.task_args.get("n_institutions", 3))
        return [f"site-{i}" for i in range(1, n + 1)]

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        if local.path is not None:
            return load_images(self, spec, local, image_args(spec.task_args, self.name))
        if local.modalities is not None:
            raise ConfigError("data.modalities does not apply to the imaging task 'breast'")
        names = self.builtin_institutions(spec)
        if local.partition not in names:
            raise ConfigError(
                f"unknown breast partition {local.partition!r}; choose one of "
                f"{', '.join(names)} (or set data.path to your own images)"
            )
        k = names.index(local.partition)
        seed = int(spec.task_args.get("split_seed", 0))
        alpha = float(spec.task_args.get("alpha", 0.5))
        splits = packaged_splits()
        train = DirichletLabelPartitioner(alpha, min_size=MIN_TRAIN_IMAGES).split(
            splits.y_train, len(names), seed
        )[k]
        test = IIDPartitioner().split(splits.y_test, len(names), seed)[k]
        data = InstitutionData(
            train=Samples(splits.x_train[train], splits.y_train[train]),
            test=Samples(splits.x_test[test], splits.y_test[test]),
        )
        check_fits_model(spec, data, local.where)
        return data
