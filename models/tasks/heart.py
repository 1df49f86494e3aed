"""``heart``: UCI Heart Disease, four real hospitals, logistic regression (FLamby's setting).

Built-in partitions are the hospitals (``cleveland``, ``hungary``, ``switzerland``, ``va``),
prepared as in ``models.datasets.heart`` (its 66/34 split, seed 43). A hospital with its own
records instead points ``[data] path`` at a CSV in heart's schema (``HEART_SCHEMA``, the spec's
``task_args``): the 13 model inputs are then encoded exactly as for the built-in data, label
``target`` 0 (no disease) / 1 (disease, UCI ``num`` > 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from consensus.task_spec import ModelSpec, TaskSpec, TrainingSettings
from fedchain.errors import ConfigError, DataError
from models.datasets.heart import HOSPITALS, load_heart_hospital
from models.tasks.abc import InstitutionData, PrimaryMetric, check_fits_model
from models.tasks.ehr import EhrCsvTask, load_ehr_csv
from models.tasks.formats.ehr_csv import parse_schema
from models.tasks.local_data import LocalData
from models.training import Samples

#: The CSV schema whose encoding gives ``models.datasets.heart.FEATURE_NAMES`` in order.
HEART_SCHEMA: dict[str, Any] = {
    "features": [
        {"name": "age", "type": "float"},
        {"name": "sex", "type": "category", "values": [0, 1]},
        {"name": "trestbps", "type": "float"},
        {"name": "chol", "type": "float"},
        {"name": "fbs", "type": "category", "values": [0, 1]},
        {"name": "thalach", "type": "float"},
        {"name": "exang", "type": "category", "values": [0, 1]},
        {"name": "oldpeak", "type": "float"},
        {
            "name": "cp",
            "type": "category",
            "values": ["typical angina", "atypical angina", "non-anginal", "asymptomatic"],
        },
        {
            "name": "restecg",
            "type": "category",
            "values": ["normal", "st-t abnormality", "lv hypertrophy"],
        },
    ],
    "label": {"name": "target", "classes": 2},
}


class HeartTask(EhrCsvTask):
    name = "heart"
    primary_metric: ClassVar[PrimaryMetric] = "auroc"
    description = "UCI Heart Disease: 4 hospitals, 13 features, logistic regression"

    def default_task_args(self) -> dict[str, Any]:
        return {"features": list(HEART_SCHEMA["features"]), "label": dict(HEART_SCHEMA["label"])}

    def default_model(self, task_args: Mapping[str, Any]) -> ModelSpec:
        return ModelSpec(
            arch="logreg", kwargs={"in_features": parse_schema(task_args, self.name).width}
        )

    def default_training(self) -> TrainingSettings:
        # The learning bench's federated setting (FLamby: Adam 1e-3, batch 4, one epoch per
        # round): about 50 steps, well under 0.1 s per round on one core.
        return TrainingSettings(epochs=1, lr=1e-3, batch_size=4, seed=0)

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        return "auroc"

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        return list(HOSPITALS)

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        schema = parse_schema(spec.task_args, self.name)
        if local.path is not None:
            return load_ehr_csv(self, spec, local, schema)
        if local.modalities is not None:
            raise ConfigError("data.modalities does not apply to the tabular task 'heart'")
        if local.partition not in HOSPITALS:
            raise ConfigError(
                f"unknown heart-disease partition {local.partition!r}; choose one of "
                f"{', '.join(HOSPITALS)} (or set data.path to your own CSV)"
            )
        if schema.width != 13:
            raise DataError(
                f"{local.where}: the built-in hospitals have 13 features, the spec's schema "
                f"encodes {schema.width}; use heart's schema or data.path"
            )
        split = load_heart_hospital(local.partition)
        data = InstitutionData(
            train=Samples(split.x_train, split.y_train), test=Samples(split.x_test, split.y_test)
        )
        check_fits_model(spec, data, local.where)
        return data
