"""One simulated institution's training data in the in-process runs, and input helpers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fedchain.errors import ConfigError
from models.training import ModelInput, Samples, num_samples


@dataclass(frozen=True)
class Site:
    """One institution's training data: an array, or {modality: array} for what it records."""

    name: str
    x: ModelInput
    y: np.ndarray

    @property
    def size(self) -> int:
        return num_samples(self.x)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names held (empty for a single-array site)."""
        return () if isinstance(self.x, np.ndarray) else tuple(sorted(self.x))

    @property
    def samples(self) -> Samples:
        return Samples(self.x, self.y)


def subset(x: ModelInput, index: np.ndarray) -> ModelInput:
    """The samples ``index`` of an input, whichever form it has."""
    if isinstance(x, np.ndarray):
        return np.asarray(x[index])
    return {name: array[index] for name, array in x.items()}


def concatenate(inputs: Sequence[ModelInput]) -> ModelInput:
    """Stack several inputs of the same form (and the same modalities) along samples."""
    if not inputs:
        raise ConfigError("nothing to concatenate")
    first = inputs[0]
    if isinstance(first, np.ndarray):
        if not all(isinstance(x, np.ndarray) for x in inputs):
            raise ConfigError("cannot pool single-array sites with multi-modal sites")
        return np.concatenate([np.asarray(x) for x in inputs])
    names = sorted(first)
    mappings: list[Mapping[str, np.ndarray]] = []
    for x in inputs:
        if isinstance(x, np.ndarray) or sorted(x) != names:
            raise ConfigError(
                f"cannot pool sites with different modalities; expected {names} everywhere"
            )
        mappings.append(x)
    return {name: np.concatenate([m[name] for m in mappings]) for name in names}


def restrict(x: ModelInput, modalities: Sequence[str]) -> ModelInput:
    """Keep only ``modalities`` of a multi-modal input (what a site without the others sees)."""
    if isinstance(x, np.ndarray):
        raise ConfigError("a single-array input has no modalities to restrict")
    missing = [m for m in modalities if m not in x]
    if missing or not modalities:
        raise ConfigError(f"cannot restrict {sorted(x)} to {list(modalities)}")
    return {m: x[m] for m in modalities}
