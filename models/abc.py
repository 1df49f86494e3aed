"""Interfaces of the models package; implementations live next to them.

Partitioners decide which institution holds which sample; encoders turn one modality into a
fixed-size embedding that the fusion model attends over. Keeping these small lets the
benchmark swap a partition scheme or an encoder without touching training code.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import nn


class Partitioner(ABC):
    """Splits sample indices ``0..n-1`` among institutions, every sample exactly once."""

    @abstractmethod
    def split(self, labels: np.ndarray, n_institutions: int, seed: int) -> list[np.ndarray]:
        """Sorted index arrays, one per institution, that together cover every sample once."""


class ModalityEncoder(nn.Module, ABC):
    """Maps one modality's batch to embeddings ``[n, embed_dim]``."""

    embed_dim: int

    @abstractmethod
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings for a batch of this modality."""
