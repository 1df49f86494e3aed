"""Metrics agree with scikit-learn and with values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from fedchain.errors import DataError
from models.metrics import METRIC_NAMES, classification_metrics

Y_TRUE = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
Y_PROB = np.array([0.1, 0.4, 0.6, 0.2, 0.9, 0.8, 0.3, 0.7, 0.55, 0.45])


def test_binary_matches_hand_computed_values():
    got = classification_metrics(Y_TRUE, Y_PROB)
    assert tuple(got) == METRIC_NAMES
    # predictions: 0 0 1 0 1 1 0 1 1 0 -> TP=4 FN=2 TN=3 FP=1
    assert got["accuracy"] == pytest.approx(0.7)
    assert got["precision"] == pytest.approx(4 / 5)
    assert got["recall"] == pytest.approx(4 / 6)
    assert got["balanced_accuracy"] == pytest.approx((4 / 6 + 3 / 4) / 2)
    f1_pos = 2 * 4 / (2 * 4 + 1 + 2)
    f1_neg = 2 * 3 / (2 * 3 + 2 + 1)
    assert got["macro_f1"] == pytest.approx((f1_pos + f1_neg) / 2)
    p_observed, p_chance = 0.7, 0.4 * 0.5 + 0.6 * 0.5
    assert got["cohen_kappa"] == pytest.approx((p_observed - p_chance) / (1 - p_chance))
    # AUROC: fraction of (positive, negative) pairs ranked correctly
    pos, neg = Y_PROB[Y_TRUE == 1], Y_PROB[Y_TRUE == 0]
    pairs = np.mean([float(p > q) for p in pos for q in neg])
    assert got["auroc"] == pytest.approx(pairs)


def test_binary_equals_sklearn():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 200)
    p = np.clip(y * 0.3 + rng.random(200) * 0.7, 0, 1)
    got = classification_metrics(y, p)
    pred = (p >= 0.5).astype(int)
    assert got["accuracy"] == skm.accuracy_score(y, pred)
    assert got["balanced_accuracy"] == skm.balanced_accuracy_score(y, pred)
    assert got["precision"] == skm.precision_score(y, pred)
    assert got["recall"] == skm.recall_score(y, pred)
    assert got["macro_f1"] == skm.f1_score(y, pred, average="macro")
    assert got["cohen_kappa"] == skm.cohen_kappa_score(y, pred)
    assert got["auroc"] == skm.roc_auc_score(y, p)


def test_multiclass_equals_sklearn():
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(4), 25)
    logits = rng.normal(size=(100, 4))
    logits[np.arange(100), y] += 1.0
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    got = classification_metrics(y, probs)
    pred = probs.argmax(axis=1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro"))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro"))
    assert got["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert got["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred))
    assert got["auroc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"))


def test_auroc_undefined_with_one_class_is_nan():
    got = classification_metrics(np.ones(5, dtype=int), np.array([0.2, 0.7, 0.9, 0.6, 0.8]))
    assert math.isnan(got["auroc"])
    assert got["accuracy"] == pytest.approx(0.8)


def test_shape_mismatch_is_rejected():
    with pytest.raises(DataError, match="do not match"):
        classification_metrics(np.zeros(3), np.zeros(4))
    with pytest.raises(DataError, match="outside"):
        classification_metrics(np.array([0, 3]), np.array([0.1, 0.2]))


def test_non_finite_predictions_give_defined_metrics() -> None:
    y = np.array([0, 1, 1, 0])
    probs = np.array([0.1, np.nan, 0.9, np.inf])
    m = classification_metrics(y, probs)
    assert m["accuracy"] == 0.5  # the two non-finite samples count as wrong
    assert np.isnan(m["auroc"])
    multi = classification_metrics(np.array([0, 1, 2]), np.full((3, 3), np.nan))
    assert multi["accuracy"] == 0.0
