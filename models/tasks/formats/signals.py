"""Multi-modal signals: an ``.npz`` with one ``[n, channels, length]`` array per modality.

Arrays are named by modality (e.g. ``acc``, ``gyro``) plus ``labels`` (integer ``[n]``). An
institution stores only the modalities it records; the task checks channels and length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fedchain.errors import DataError
from models.tasks.formats._npz import as_float_signal, labels_of, read_npz


def read_signals_npz(
    path: Path, modalities: Sequence[str], where: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The arrays of ``modalities`` (float32 ``[n, c, length]``) and the labels."""
    arrays = read_npz(path, where)
    missing = [m for m in modalities if m not in arrays]
    if missing:
        raise DataError(
            f"{where}: no array for modality {missing[0]!r}; found {sorted(arrays)}; add it "
            "or set data.modalities to the modalities you record"
        )
    out: dict[str, np.ndarray] = {}
    n: int | None = None
    for name in modalities:
        array = arrays[name]
        if array.ndim != 3:
            raise DataError(
                f"{where}: array {name!r} has shape {list(array.shape)}; expected "
                "[n, channels, length]"
            )
        if n is not None and array.shape[0] != n:
            raise DataError(
                f"{where}: array {name!r} has {array.shape[0]} samples, {modalities[0]!r} {n}; "
                "every modality needs one entry per sample"
            )
        n = int(array.shape[0])
        out[name] = np.ascontiguousarray(as_float_signal(array, name, where))
    assert n is not None
    return out, labels_of(arrays, n, where)
