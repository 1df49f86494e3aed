"""Reading an institution's ``.npz`` without ever unpickling (``allow_pickle=False``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fedchain.errors import DataError


def read_npz(path: Path, where: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` (object arrays refused), or one-line DataError."""
    if not path.is_file():
        raise DataError(f"{where} is not a file; point data.path at your .npz")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic not in (b"PK\x03\x04", b"PK\x05\x06"):
        # np.load would otherwise take any other bytes for a pickle (refused, but misnamed).
        raise DataError(f"{where}: not a readable .npz (no zip header); save it with numpy.savez")
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except ValueError as exc:
        if "pickle" in str(exc):
            raise DataError(
                f"{where}: holds object arrays, which need pickle; save plain numeric arrays"
            ) from None
        raise DataError(f"{where}: not a readable .npz ({exc}); save it with numpy.savez") from None
    except Exception as exc:  # zipfile.BadZipFile, EOFError, OSError, ...
        raise DataError(
            f"{where}: not a readable .npz ({type(exc).__name__}: {exc}); save it with numpy.savez"
        ) from None


def labels_of(arrays: dict[str, np.ndarray], n: int, where: str) -> np.ndarray:
    """The ``labels`` array as int64 ``[n]`` (DataError naming the problem)."""
    if "labels" not in arrays:
        raise DataError(f"{where}: no array 'labels'; found {sorted(arrays)}; add labels [n]")
    labels = arrays["labels"]
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.shape != (n,):
        raise DataError(f"{where}: 'labels' has shape {list(labels.shape)}, expected [{n}]")
    if np.issubdtype(labels.dtype, np.floating):
        if not np.all(np.isfinite(labels)) or not np.all(labels == np.round(labels)):
            raise DataError(f"{where}: 'labels' must be integer class indices")
    elif not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: 'labels' is {labels.dtype}, expected integer class indices")
    return labels.astype(np.int64)


def as_float_signal(array: np.ndarray, name: str, where: str) -> np.ndarray:
    """A numeric array as float32, checked finite."""
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise DataError(f"{where}: array {name!r} is {array.dtype}, expected numbers")
    out = array.astype(np.float32)
    if not np.all(np.isfinite(out)):
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        raise DataError(f"{where}: array {name!r} holds {bad} NaN/inf value(s); fix or drop them")
    return out
