"""Whole-model vectors with sums in a fixed order, for checks and credit every peer must agree on.

BLAS dot products and torch reductions may split a sum differently with the thread count;
``numpy.cumsum`` adds strictly left to right, so these floats are the same on every peer.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import torch


def change_vector(
    weights: Mapping[str, torch.Tensor], previous: Mapping[str, torch.Tensor]
) -> np.ndarray:
    """``weights - previous`` as one float64 vector, tensors in sorted-name order."""
    parts = [
        (weights[k].to(torch.float64) - previous[k].to(torch.float64)).reshape(-1).numpy()
        for k in sorted(previous)
    ]
    return np.concatenate(parts) if parts else np.zeros(0)


def ordered_dot(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(a * b)`` added left to right."""
    return float(np.cumsum(a * b)[-1]) if a.size else 0.0


def norm(a: np.ndarray) -> float:
    return math.sqrt(ordered_dot(a, a))


def median(values: Sequence[float]) -> float:
    """The median (mean of the middle two for an even count); values must not be empty."""
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
