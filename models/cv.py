"""k-fold cross-validation and mean ± std summaries.

Folds are stratified by label; when ``groups`` are given (e.g. HAPT subjects) no group is split
across folds, so overlapping windows of one person never sit on both sides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from torch import nn

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError
from models.sites import subset
from models.training import ModelInput, Samples, evaluate, train


def summarize(runs: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """``{metric: {"mean": m, "std": s}}`` over runs (population std; NaNs ignored)."""
    if not runs:
        raise ConfigError("nothing to summarize")
    out: dict[str, dict[str, float]] = {}
    for metric in runs[0]:
        values = np.array([run[metric] for run in runs], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            out[metric] = {"mean": float("nan"), "std": float("nan")}
        else:
            out[metric] = {"mean": float(finite.mean()), "std": float(finite.std())}
    return out


def fold_indices(
    y: np.ndarray, k: int, seed: int, groups: np.ndarray | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` (train, test) index pairs, stratified by label and, if given, grouped."""
    if k < 2:
        raise ConfigError(f"cross-validation needs k >= 2, got {k}")
    labels = np.asarray(y)
    placeholder = np.zeros(labels.size)
    if groups is None:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        return list(splitter.split(placeholder, labels))
    grouped = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    return list(grouped.split(placeholder, labels, groups))


def cross_validate(
    make_model: Callable[[int], nn.Module],
    x: ModelInput,
    y: np.ndarray,
    *,
    k: int,
    hp: TrainingSettings,
    seed: int,
    groups: np.ndarray | None = None,
) -> list[dict[str, float]]:
    """Metrics of each of ``k`` folds; ``make_model(seed)`` builds a fresh model per fold."""
    labels = np.asarray(y)
    results = []
    for fold, (train_idx, test_idx) in enumerate(fold_indices(labels, k, seed, groups)):
        model = make_model(seed * 100 + fold)
        train(model, Samples(subset(x, train_idx), labels[train_idx]), hp, seed * 100 + fold)
        results.append(evaluate(model, Samples(subset(x, test_idx), labels[test_idx])))
    return results
