"""The two reference points a federation is judged against, trained by the same code.

Pooled: all institutions' training data in one place (the ceiling a federation tries to reach).
Local-only: each institution alone (what it gets without joining) is ``models.training.train``
on that institution's data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from consensus.task_spec import TrainingSettings
from models.sites import Site, concatenate
from models.training import train


def pool_sites(sites: Sequence[Site], name: str = "pooled") -> Site:
    """One site holding every site's training data (same modalities required)."""
    return Site(
        name=name,
        x=concatenate([site.x for site in sites]),
        y=np.concatenate([site.y for site in sites]),
    )


def train_pooled(
    model: nn.Module, sites: Sequence[Site], settings: TrainingSettings, seed: int
) -> nn.Module:
    """Centralised training on the union of the sites' data (in place); returns ``model``."""
    train(model, pool_sites(sites).samples, settings, seed)
    return model
