"""The institution's local step: load its own data, train from the global model.

Data never leaves this module's process; only the trained weights (a state dict
of tensors) and the number of samples behind them go to the content store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError, ProtocolError
from models.datasets.heart import HOSPITALS, TabularSplit, load_heart_hospital
from models.metrics import classification_metrics
from models.registry import build_model_from_spec
from models.training import predict_proba, train_local

StateDict = dict[str, torch.Tensor]


def load_partition(dataset: str, partition: str) -> TabularSplit:
    """This institution's split of a data set named in the task spec."""
    if dataset != "heart":
        raise ConfigError(f"data set {dataset!r} is not supported by the peer yet; use 'heart'")
    if partition not in HOSPITALS:
        raise ConfigError(
            f"unknown heart-disease partition {partition!r}; choose one of {', '.join(HOSPITALS)}"
        )
    return load_heart_hospital(partition)


def build_model(spec: TaskSpec) -> nn.Module:
    return build_model_from_spec({"arch": spec.model.arch, "kwargs": spec.model.kwargs})


def initial_weights(spec: TaskSpec) -> StateDict:
    """The round-1 global model: the architecture initialised from the spec's seed."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.training.seed)
        model = build_model(spec)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def reference_weights(spec: TaskSpec) -> StateDict:
    """Names, shapes and dtypes every exchanged state dict must have."""
    return {k: v.detach() for k, v in build_model(spec).state_dict().items()}


@dataclass
class LocalTrainer:
    spec: TaskSpec
    data: TabularSplit

    @property
    def num_samples(self) -> int:
        return int(self.data.x_train.shape[0])

    def reference_weights(self) -> StateDict:
        return reference_weights(self.spec)

    def evaluate(self, weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Metrics of ``weights`` on this institution's test split."""
        return evaluate(self.spec, weights, self.data.x_test, self.data.y_test)

    def train(self, global_weights: Mapping[str, torch.Tensor], round_no: int) -> StateDict:
        model = build_model(self.spec)
        model.load_state_dict(dict(global_weights))
        t = self.spec.training
        train_local(
            model,
            self.data.x_train,
            self.data.y_train,
            epochs=t.epochs,
            lr=t.lr,
            batch_size=t.batch_size,
            seed=t.seed + round_no,
            weight_decay=t.weight_decay,
        )
        return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def evaluate(
    spec: TaskSpec, weights: Mapping[str, torch.Tensor], x: np.ndarray, y: np.ndarray
) -> dict[str, float]:
    """Metrics of ``weights`` on local data; ProtocolError if the model's outputs are not finite."""
    model = build_model(spec)
    model.load_state_dict(dict(weights))
    probs = predict_proba(model, x)
    bad = int((~np.isfinite(probs.reshape(len(probs), -1)).all(axis=1)).sum())
    if bad:
        raise ProtocolError(
            f"the agreed model gives non-finite outputs on {bad} of {len(probs)} local test samples"
        )
    return classification_metrics(y, probs)
