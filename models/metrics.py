"""Classification metrics, all computed by scikit-learn so they mean what the field means.

Binary tasks pass the probability of class 1 (shape ``[n]``): the decision threshold is 0.5 and
precision/recall refer to class 1. Multi-class tasks pass class probabilities ``[n, C]``: the
prediction is the arg-max, precision/recall are macro averages and AUROC is one-vs-rest, macro.
AUROC is NaN when the true labels do not cover every class (it is undefined there) or when any
predicted probability is not finite; such samples count as wrong for the other metrics.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from fedchain.errors import DataError

METRIC_NAMES: tuple[str, ...] = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "macro_f1",
    "cohen_kappa",
    "auroc",
)


NO_PREDICTION = -1
"""Label given to a sample whose predicted probabilities are not finite: counted as wrong."""


def predicted_labels(y_prob: np.ndarray) -> np.ndarray:
    """Hard labels from probabilities (threshold 0.5 for binary, arg-max for multi-class).

    A sample with NaN or infinite probabilities gets ``NO_PREDICTION``, so a degenerate model
    scores as wrong on it instead of raising.
    """
    probs = np.asarray(y_prob)
    if probs.ndim == 1:
        labels = (probs >= 0.5).astype(np.int64)
        finite = np.isfinite(probs)
    else:
        labels = np.asarray(np.argmax(probs, axis=1), dtype=np.int64)
        finite = np.isfinite(probs).all(axis=1)
    return np.where(finite, labels, NO_PREDICTION)


def _auroc(y_true: np.ndarray, probs: np.ndarray) -> float:
    if not np.isfinite(probs).all():
        return float("nan")
    if probs.ndim == 1:
        if np.unique(y_true).size < 2:
            return float("nan")
        return float(skm.roc_auc_score(y_true, probs))
    n_classes = probs.shape[1]
    if not np.array_equal(np.unique(y_true), np.arange(n_classes)):
        return float("nan")
    normalised = probs / probs.sum(axis=1, keepdims=True)
    return float(
        skm.roc_auc_score(
            y_true, normalised, multi_class="ovr", average="macro", labels=np.arange(n_classes)
        )
    )


def classification_metrics(y_true: np.ndarray, y_prob: np.ndarray) -> dict[str, float]:
    """The seven metrics of ``METRIC_NAMES`` for one set of predictions."""
    truth = np.asarray(y_true).astype(np.int64)
    probs = np.asarray(y_prob, dtype=np.float64)
    if probs.ndim not in (1, 2) or probs.shape[0] != truth.shape[0] or truth.ndim != 1:
        raise DataError(
            f"y_true {truth.shape} and y_prob {probs.shape} do not match: expected [n] and [n] "
            "(binary) or [n, C] (multi-class)"
        )
    if truth.size == 0:
        raise DataError("cannot compute metrics on zero samples")
    n_classes = 2 if probs.ndim == 1 else probs.shape[1]
    labels = np.arange(n_classes)
    if truth.min() < 0 or truth.max() >= n_classes:
        raise DataError(f"y_true has labels outside 0..{n_classes - 1}")
    pred = predicted_labels(probs)
    # A sample without a finite prediction counts as wrong: give it a label other than the truth.
    pred = np.where(pred == NO_PREDICTION, (truth + 1) % n_classes, pred)
    with warnings.catch_warnings():
        # Degenerate inputs (a class never predicted or never true) are legitimate on small
        # institutions; the values sklearn returns there are documented, so stay quiet.
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        return _all_metrics(truth, probs, pred, labels)


def _all_metrics(
    truth: np.ndarray, probs: np.ndarray, pred: np.ndarray, labels: np.ndarray
) -> dict[str, float]:
    average = "binary" if probs.ndim == 1 else "macro"
    return {
        "accuracy": float(skm.accuracy_score(truth, pred)),
        "balanced_accuracy": float(skm.balanced_accuracy_score(truth, pred)),
        "precision": float(
            skm.precision_score(truth, pred, labels=labels, average=average, zero_division=0)
        ),
        "recall": float(
            skm.recall_score(truth, pred, labels=labels, average=average, zero_division=0)
        ),
        "macro_f1": float(
            skm.f1_score(truth, pred, labels=labels, average="macro", zero_division=0)
        ),
        "cohen_kappa": float(skm.cohen_kappa_score(truth, pred, labels=labels)),
        "auroc": _auroc(truth, probs),
    }
