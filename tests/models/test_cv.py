"""k-fold cross-validation and the mean ± std summaries."""

from __future__ import annotations

import math

import numpy as np
import pytest

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError
from models.baselines import pool_sites
from models.cv import cross_validate, fold_indices, summarize
from models.datasets.heart import HOSPITALS, load_heart_all
from models.metrics import METRIC_NAMES
from models.registry import init_model
from models.sites import Site

LOGREG = {"arch": "logreg", "kwargs": {"in_features": 13}}


def test_summarize_fixed_numbers():
    runs = [{"a": 0.5, "b": 1.0}, {"a": 0.7, "b": float("nan")}, {"a": 0.9, "b": 3.0}]
    out = summarize(runs)
    assert out["a"]["mean"] == pytest.approx(0.7)
    assert out["a"]["std"] == pytest.approx(np.std([0.5, 0.7, 0.9]))
    assert out["b"] == {"mean": 2.0, "std": 1.0}
    assert math.isnan(summarize([{"c": float("nan")}])["c"]["mean"])
    with pytest.raises(ConfigError):
        summarize([])


@pytest.fixture(scope="module")
def pooled_heart():
    splits = load_heart_all()
    return pool_sites([Site(h, splits[h].x_train, splits[h].y_train) for h in HOSPITALS])


def test_kfold_on_heart(pooled_heart):
    folds = cross_validate(
        lambda s: init_model(LOGREG, s),
        pooled_heart.x,
        pooled_heart.y,
        k=4,
        hp=TrainingSettings(epochs=5, lr=0.01, batch_size=16),
        seed=0,
    )
    assert len(folds) == 4
    for fold in folds:
        assert set(fold) == set(METRIC_NAMES)
        assert 0.6 < fold["accuracy"] <= 1.0 and fold["auroc"] > 0.7
    again = cross_validate(
        lambda s: init_model(LOGREG, s),
        pooled_heart.x,
        pooled_heart.y,
        k=4,
        hp=TrainingSettings(epochs=5, lr=0.01, batch_size=16),
        seed=0,
    )
    assert again == folds


def test_folds_partition_the_samples_and_keep_groups_together(pooled_heart):
    y = pooled_heart.y
    for groups in (None, np.arange(y.size) // 10):
        folds = fold_indices(y, 3, seed=0, groups=groups)
        tests = np.concatenate([test for _, test in folds])
        np.testing.assert_array_equal(np.sort(tests), np.arange(y.size))  # each sample tested once
        for train, test in folds:
            assert not set(train) & set(test)
            assert abs(y[test].mean() - y.mean()) < 0.1  # stratified
            if groups is not None:
                assert not set(groups[train]) & set(groups[test])
    results = cross_validate(
        lambda s: init_model(LOGREG, s),
        pooled_heart.x,
        y,
        k=3,
        hp=TrainingSettings(epochs=2, lr=0.01, batch_size=32),
        seed=0,
        groups=np.arange(y.size) // 10,
    )
    assert len(results) == 3


def test_k_must_be_at_least_two(pooled_heart):
    with pytest.raises(ConfigError, match="k >= 2"):
        cross_validate(
            lambda s: init_model(LOGREG, s),
            pooled_heart.x,
            pooled_heart.y,
            k=1,
            hp=TrainingSettings(epochs=1, lr=0.01, batch_size=32),
            seed=0,
        )
