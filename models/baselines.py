"""The two reference points a federation is judged against, trained by the same code.

Pooled: all institutions' training data in one place (the ceiling a federation tries to reach).
Local-only: each institution alone (what it gets without joining).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch import nn

from models.metrics import classification_metrics
from models.sites import LocalTraining, Site, concatenate
from models.training import ModelInput, predict_proba, train_local


def pool_sites(sites: Sequence[Site], name: str = "pooled") -> Site:
    """One site holding every site's training data (same modalities required)."""
    return Site(
        name=name,
        x=concatenate([site.x for site in sites]),
        y=np.concatenate([site.y for site in sites]),
    )


def fit(model: nn.Module, site: Site, hp: LocalTraining, seed: int) -> nn.Module:
    """Train ``model`` on one site's data (in place) and return it."""
    train_local(
        model,
        site.x,
        site.y,
        epochs=hp.epochs,
        lr=hp.lr,
        batch_size=hp.batch_size,
        seed=seed,
        weight_decay=hp.weight_decay,
        optimizer=hp.optimizer,
    )
    return model


def train_pooled(
    model: nn.Module, sites: Sequence[Site], hp: LocalTraining, seed: int
) -> nn.Module:
    """Centralised training on the union of the sites' data."""
    return fit(model, pool_sites(sites), hp, seed)


def evaluate(model: nn.Module, x: ModelInput, y: np.ndarray) -> dict[str, float]:
    """The standard metrics of ``model`` on one test set."""
    return classification_metrics(y, predict_proba(model, x))
