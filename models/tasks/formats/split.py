"""The local train/test split of an institution's own files."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from models.sites import subset
from models.training import ModelInput, Samples


def split_samples(
    x: ModelInput, y: np.ndarray, test_fraction: float, seed: int
) -> tuple[Samples, Samples]:
    """A seeded split, stratified on the label when every class has at least two samples."""
    labels = np.asarray(y, dtype=np.int64)
    index = np.arange(labels.size)
    counts = np.bincount(labels) if labels.size else np.zeros(0, dtype=np.int64)
    present = counts[counts > 0]
    n_test = int(np.ceil(test_fraction * labels.size))
    stratify = (
        labels
        if present.size > 1
        and present.min() >= 2
        and present.size <= n_test
        and labels.size - n_test >= present.size
        else None
    )
    if labels.size < 2:
        train, test = index, index[:0]
    else:
        train, test = train_test_split(
            index, test_size=test_fraction, random_state=seed, shuffle=True, stratify=stratify
        )
    train, test = np.sort(train), np.sort(test)
    return Samples(subset(x, train), labels[train]), Samples(subset(x, test), labels[test])


def standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """z-scores with the train split's mean and unbiased deviation (a constant column centred)."""
    mean = train.mean(axis=0)
    std = train.std(axis=0, ddof=1) if train.shape[0] > 1 else np.ones(train.shape[1])
    std = np.where(std > 0, std, 1.0)
    return (
        np.ascontiguousarray((train - mean) / std, dtype=np.float32),
        np.ascontiguousarray((test - mean) / std, dtype=np.float32),
    )
