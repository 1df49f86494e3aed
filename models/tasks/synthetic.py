"""``synthetic-bench``: a benchmark-only task whose model has exactly ``params`` float32 numbers.

Not a clinical task and never a default: ``scripts/bench/round`` uses it to measure what the
protocol itself costs at a chosen model size. The model is a two-class logistic regression with
``(params - 2) / 2`` inputs (``2 * inputs`` weights + 2 biases = ``params``); every institution
holds two constant samples, one per class, so a round's "training" is one SGD step: a tiny,
near-constant time and a small deterministic change to every weight. The constant is derived
from the institution's partition name (any name is accepted), so no two institutions send the
same bytes: identical updates would share their content addresses and never cross the network.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from consensus.task_spec import ModelSpec, TaskSpec, TrainingSettings
from fedchain.errors import ConfigError
from models.tasks.abc import InstitutionData, PrimaryMetric, Task
from models.tasks.local_data import LocalData
from models.training import Samples

MIN_PARAMS = 6
"""The smallest size: one input (2 weights + 2 biases) would be 4; keep a few numbers."""


def inputs_for(params: int) -> int:
    """Inputs of the logistic regression holding exactly ``params`` numbers (else ConfigError)."""
    if params < MIN_PARAMS or params % 2:
        raise ConfigError(
            f"synthetic-bench task_args.params must be an even number >= {MIN_PARAMS}, got "
            f"{params}; a two-class logistic regression has 2 * inputs + 2 numbers"
        )
    return (params - 2) // 2


class SyntheticBenchTask(Task):
    name = "synthetic-bench"
    primary_metric: ClassVar[PrimaryMetric] = "auroc"
    description = "benchmark only (scripts/bench/round): a model of N float32 numbers, no real data"

    def default_task_args(self) -> dict[str, Any]:
        return {"params": 1_000_000}

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:
        params = task_args.get("params")
        if not isinstance(params, int) or isinstance(params, bool):
            raise ConfigError(
                f"synthetic-bench task_args.params must be an integer, got {params!r}"
            )
        inputs_for(params)

    def default_model(self, task_args: Mapping[str, Any]) -> ModelSpec:
        return ModelSpec(arch="logreg", kwargs={"in_features": inputs_for(task_args["params"])})

    def default_training(self) -> TrainingSettings:
        # Two samples, one batch, one epoch: a single SGD step.
        return TrainingSettings(epochs=1, lr=0.1, batch_size=2, seed=0, optimizer="sgd")

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        return []

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        if local.path is not None or local.modalities is not None:
            raise ConfigError(
                f"{local.where}: synthetic-bench has no data files; set only a partition"
            )
        width = inputs_for(spec.task_args["params"])
        value = 0.01 + (zlib.crc32(str(local.partition).encode()) % 1000) * 1e-5
        # One shared read-only row seen twice: the samples cost one row of memory, not two.
        row = np.full((1, width), value, dtype=np.float32)
        samples = Samples(np.broadcast_to(row, (2, width)), np.array([0, 1], dtype=np.int64))
        return InstitutionData(train=samples, test=samples)
