"""Ways of dividing one data set among simulated institutions.

Real federations are not IID: hospitals differ in size (quantity skew), in case mix (label
skew, simulated with a Dirichlet over labels) and in which modalities they record. Natural
partitions (real hospitals, real subjects) are used whenever the data carries them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedchain.errors import ConfigError
from models.abc import Partitioner


def _check_count(n_institutions: int, n_samples: int) -> None:
    if n_institutions < 1:
        raise ConfigError(f"need at least one institution, got {n_institutions}")
    if n_samples < n_institutions:
        raise ConfigError(
            f"cannot give {n_institutions} institutions a sample each from {n_samples}"
        )


class NaturalPartitioner(Partitioner):
    """One institution per distinct value of ``groups`` (hospital, subject group), sorted."""

    def __init__(self, groups: np.ndarray) -> None:
        self.groups = np.asarray(groups)

    def split(self, labels: np.ndarray, n_institutions: int, seed: int) -> list[np.ndarray]:
        if self.groups.shape != (np.asarray(labels).shape[0],):
            raise ConfigError(
                f"groups have shape {self.groups.shape}, labels {np.asarray(labels).shape}"
            )
        keys = np.unique(self.groups)
        if keys.size != n_institutions:
            raise ConfigError(
                f"natural partition has {keys.size} groups, but {n_institutions} institutions "
                "were asked for"
            )
        return [np.flatnonzero(self.groups == key) for key in keys]


class IIDPartitioner(Partitioner):
    """Uniformly random, equal-sized shares (the unrealistic reference point)."""

    def split(self, labels: np.ndarray, n_institutions: int, seed: int) -> list[np.ndarray]:
        n = np.asarray(labels).shape[0]
        _check_count(n_institutions, n)
        order = np.random.default_rng(seed).permutation(n)
        return [np.sort(part) for part in np.array_split(order, n_institutions)]


class DirichletLabelPartitioner(Partitioner):
    """Label skew: each class is shared among institutions by proportions ~ Dirichlet(alpha).

    Small ``alpha`` gives each institution a few dominant classes; large ``alpha`` tends to IID.
    Draws are repeated (same seeded generator) until every institution has ``min_size`` samples.
    """

    def __init__(self, alpha: float, min_size: int = 2, max_tries: int = 1000) -> None:
        if not alpha > 0:
            raise ConfigError(f"Dirichlet alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.min_size = min_size
        self.max_tries = max_tries

    def split(self, labels: np.ndarray, n_institutions: int, seed: int) -> list[np.ndarray]:
        y = np.asarray(labels)
        _check_count(n_institutions, y.shape[0])
        rng = np.random.default_rng(seed)
        for _ in range(self.max_tries):
            shares: list[list[np.ndarray]] = [[] for _ in range(n_institutions)]
            for cls in np.unique(y):
                members = rng.permutation(np.flatnonzero(y == cls))
                proportions = rng.dirichlet(np.full(n_institutions, self.alpha))
                cuts = (np.cumsum(proportions)[:-1] * members.size).astype(np.int64)
                for inst, part in enumerate(np.split(members, cuts)):
                    shares[inst].append(part)
            parts = [np.sort(np.concatenate(share)) for share in shares]
            if min(part.size for part in parts) >= self.min_size:
                return parts
        raise ConfigError(
            f"no Dirichlet(alpha={self.alpha}) split gave all {n_institutions} institutions "
            f">= {self.min_size} samples in {self.max_tries} tries; raise alpha or lower min_size"
        )


class QuantitySkewPartitioner(Partitioner):
    """Size skew with IID labels: institution sizes ~ Dirichlet(alpha) (at least ``min_size``)."""

    def __init__(self, alpha: float, min_size: int = 2) -> None:
        if not alpha > 0:
            raise ConfigError(f"Dirichlet alpha must be > 0, got {alpha}")
        self.alpha = alpha
        self.min_size = min_size

    def split(self, labels: np.ndarray, n_institutions: int, seed: int) -> list[np.ndarray]:
        n = np.asarray(labels).shape[0]
        _check_count(n_institutions, n)
        spare = n - self.min_size * n_institutions
        if spare < 0:
            raise ConfigError(
                f"{n} samples cannot give {n_institutions} institutions {self.min_size} each"
            )
        rng = np.random.default_rng(seed)
        proportions = rng.dirichlet(np.full(n_institutions, self.alpha))
        extra = np.floor(proportions * spare).astype(np.int64)
        extra[: spare - int(extra.sum())] += 1
        sizes = extra + self.min_size
        order = rng.permutation(n)
        return [np.sort(part) for part in np.split(order, np.cumsum(sizes)[:-1])]


def label_distributions(labels: np.ndarray, parts: Sequence[np.ndarray]) -> np.ndarray:
    """Row ``i`` = class frequencies of institution ``i`` (classes = all labels seen)."""
    y = np.asarray(labels)
    classes = np.unique(y)
    rows = [np.array([np.mean(y[p] == c) if p.size else 0.0 for c in classes]) for p in parts]
    return np.stack(rows)


def label_skew(labels: np.ndarray, parts: Sequence[np.ndarray]) -> float:
    """Mean total-variation distance between each institution's and the global label mix."""
    y = np.asarray(labels)
    overall = np.array([np.mean(y == c) for c in np.unique(y)])
    per_inst = label_distributions(y, parts)
    return float(np.mean(0.5 * np.abs(per_inst - overall).sum(axis=1)))


def modality_availability(
    institutions: Sequence[str],
    modalities: Sequence[str],
    missing_fraction: Mapping[str, float],
    seed: int,
) -> dict[str, tuple[str, ...]]:
    """Which modalities each institution records; ``round(f * K)`` institutions lack modality m.

    Institutions are drawn with a seeded generator; no institution is left with no modality.
    """
    unknown = set(missing_fraction) - set(modalities)
    if unknown:
        raise ConfigError(f"missing_fraction names unknown modalities {sorted(unknown)}")
    rng = np.random.default_rng(seed)
    lacking: dict[str, set[str]] = {inst: set() for inst in institutions}
    for modality in modalities:
        fraction = missing_fraction.get(modality, 0.0)
        if not 0.0 <= fraction <= 1.0:
            raise ConfigError(
                f"missing fraction for {modality!r} must be in [0, 1], got {fraction}"
            )
        count = round(fraction * len(institutions))
        chosen = rng.choice(len(institutions), size=count, replace=False)
        for index in chosen.tolist():
            lacking[institutions[int(index)]].add(modality)
    result = {inst: tuple(m for m in modalities if m not in lacking[inst]) for inst in institutions}
    empty = [inst for inst, mods in result.items() if not mods]
    if empty:
        raise ConfigError(
            f"institutions {empty} would have no modality at all; lower the fractions"
        )
    return result
