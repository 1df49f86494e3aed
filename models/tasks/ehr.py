"""``ehr-csv``: federate any tabular EHR data set from a CSV, without writing code.

The spec's ``task_args`` hold the schema (see ``models.tasks.formats.ehr_csv``); the model is
logistic regression over the encoded features (``in_features`` = the schema's encoded width,
``num_classes`` = the label's classes); a consortium may publish another model (e.g. ``mlp``)
in the spec. Each institution points ``[data] path`` at its CSV.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

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
from models.tasks.formats.ehr_csv import EhrSchema, parse_schema, read_ehr_csv
from models.tasks.formats.split import split_samples, standardize
from models.tasks.local_data import LocalData
from models.training import Samples


def load_ehr_csv(
    task: Task, spec: TaskSpec, local: LocalData, schema: EhrSchema
) -> InstitutionData:
    """An institution's CSV read with ``schema``, split, z-scored and checked against ``spec``."""
    if local.modalities is not None:
        raise ConfigError(f"data.modalities does not apply to the tabular task {task.name!r}")
    fmt = local.data_format()
    if fmt != "csv":
        raise ConfigError(f"{local.where}: task {task.name!r} reads a CSV, not {fmt!r}")
    x, y = read_ehr_csv(local.existing_path(), schema, local.where)
    train, test = split_samples(x, y, local.test_fraction, local.split_seed)
    assert isinstance(train.x, np.ndarray) and isinstance(test.x, np.ndarray)
    x_train, x_test = standardize(train.x, test.x)
    data = InstitutionData(train=Samples(x_train, train.y), test=Samples(x_test, test.y))
    declared = spec.model.kwargs.get("in_features")
    if declared is not None and declared != schema.width:
        raise DataError(
            f"{local.where}: the schema encodes {schema.width} features but the agreed model "
            f"takes in_features={declared}; the task spec is inconsistent"
        )
    check_enough(data, schema.label.classes, local.where)
    check_fits_model(spec, data, local.where)
    return data


class EhrCsvTask(Task):
    name = "ehr-csv"
    primary_metric: ClassVar[PrimaryMetric] = "auroc"
    description = "tabular EHR records from a CSV whose schema the spec's task_args name"

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:
        parse_schema(task_args, self.name)

    def default_model(self, task_args: Mapping[str, Any]) -> ModelSpec:
        schema = parse_schema(task_args, self.name)
        return ModelSpec(
            arch="logreg",
            kwargs={"in_features": schema.width, "num_classes": schema.label.classes},
        )

    def default_training(self) -> TrainingSettings:
        return TrainingSettings(epochs=1, lr=1e-3, batch_size=4, seed=0)

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        classes = parse_schema(spec.task_args, self.name).label.classes
        return "auroc" if classes == 2 else "macro_f1"

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        return []

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        no_partitions(self, local)
        return load_ehr_csv(self, spec, local, parse_schema(spec.task_args, self.name))
