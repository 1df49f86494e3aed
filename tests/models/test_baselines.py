"""Pooled training (the benchmark's upper reference) and pooling the institutions' data."""

from __future__ import annotations

import numpy as np
import pytest

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError
from models.baselines import pool_sites, train_pooled
from models.datasets.heart import HOSPITALS, load_heart_all
from models.registry import init_model
from models.sites import Site
from models.training import Samples, evaluate

LOGREG = {"arch": "logreg", "kwargs": {"in_features": 13}}


def test_pooled_baseline_learns_heart() -> None:
    splits = load_heart_all()
    sites = [Site(h, splits[h].x_train, splits[h].y_train) for h in HOSPITALS]
    x_test = np.concatenate([splits[h].x_test for h in HOSPITALS])
    y_test = np.concatenate([splits[h].y_test for h in HOSPITALS])
    model = train_pooled(
        init_model(LOGREG, seed=0), sites, TrainingSettings(epochs=5, lr=0.01, batch_size=16), 0
    )
    assert evaluate(model, Samples(x_test, y_test))["accuracy"] > 0.7


def test_sites_with_different_modalities_cannot_be_pooled() -> None:
    with pytest.raises(ConfigError, match="different modalities"):
        pool_sites(
            [
                Site("a", {"acc": np.zeros((2, 3))}, np.zeros(2)),
                Site("b", {"gyro": np.zeros((2, 3))}, np.zeros(2)),
            ]
        )
