"""Between a model's state dict and the flat float64 change that secure aggregation masks.

The change is ``float64(w) - float64(global)`` over the tensors in sorted-key order (the
kernels' :func:`~consensus.strategies.kernels.flatten`), so every member lays out its vector the
same way; the aggregate is the global model plus the mean change, cast to float32 once.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
import torch

from consensus.strategies.abc import StateDict
from consensus.strategies.kernels import flatten, unflatten


def change_of(
    weights: Mapping[str, torch.Tensor], previous: Mapping[str, torch.Tensor]
) -> npt.NDArray[np.float64]:
    """The member's change from the round's global model as one float64 vector."""
    keys = sorted(previous)
    return (flatten(weights, keys) - flatten(previous, keys)).numpy()


def apply_change(
    previous: Mapping[str, torch.Tensor], mean_change: npt.NDArray[np.float64]
) -> StateDict:
    """``float32(float64(global) + mean_change)`` shaped like the global model."""
    keys = sorted(previous)
    return unflatten(flatten(previous, keys) + torch.from_numpy(mean_change), previous, keys)
