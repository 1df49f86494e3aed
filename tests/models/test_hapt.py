"""The HAPT loader on the real packaged file."""

from __future__ import annotations

import gzip
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedchain.errors import DataError
from models.datasets import hapt
from models.datasets.hapt import load_hapt_windows, subject_institutions

# Windows per subject with 128-sample windows, 50% overlap, inside one activity run.
EXPECTED_PER_SUBJECT = [
    347, 304, 344, 314, 301, 326, 306, 284, 299, 298, 321, 327, 328, 321, 334,
    366, 377, 380, 363, 359, 413, 323, 375, 387, 413, 396, 382, 384, 346, 393,
]  # fmt: skip
EXPECTED_PER_ACTIVITY = [1722, 1544, 1407, 1801, 1979, 1958]


@pytest.fixture(scope="module")
def windows() -> hapt.HaptWindows:
    return load_hapt_windows()


def test_shapes_and_dtypes(windows):
    n = hapt.EXPECTED_WINDOWS
    assert windows.acc.shape == (n, 3, 128) and windows.gyro.shape == (n, 3, 128)
    assert windows.acc.dtype == np.float32 and windows.gyro.dtype == np.float32
    assert windows.labels.dtype == np.int64 and windows.labels.shape == (n,)
    assert np.all(np.isfinite(windows.acc)) and np.all(np.isfinite(windows.gyro))


def test_counts_per_subject_and_activity(windows):
    assert np.bincount(windows.subjects)[1:].tolist() == EXPECTED_PER_SUBJECT
    assert np.bincount(windows.labels).tolist() == EXPECTED_PER_ACTIVITY
    # every subject performed every activity
    for subject in hapt.SUBJECTS:
        assert set(windows.labels[windows.subjects == subject]) == set(range(6))


def test_signals_are_physical(windows):
    # Gravity: the accelerometer (in g) of a lying subject still has magnitude near 1.
    laying = windows.acc[windows.labels == hapt.ACTIVITIES.index("laying")]
    magnitude = np.linalg.norm(laying.mean(axis=2), axis=1)
    assert 0.85 < float(np.median(magnitude)) < 1.15
    # The gyroscope (rad/s) is near zero on average for static postures.
    static = windows.gyro[windows.labels >= 3]
    assert abs(float(static.mean())) < 0.05


def test_windows_overlap_by_half(windows):
    first = windows.acc[(windows.subjects == 1) & (windows.recordings == 0)]
    np.testing.assert_array_equal(first[0][:, 64:], first[1][:, :64])


def test_institutions_of_five_subjects(windows):
    institutions = subject_institutions(windows.subjects)
    assert institutions.min() == 0 and institutions.max() == 5
    for inst in range(6):
        assert set(windows.subjects[institutions == inst]) == set(range(5 * inst + 1, 5 * inst + 6))


def test_modalities_view(windows):
    index = np.array([0, 5, 9])
    view = windows.modalities(index)
    assert sorted(view) == ["acc", "gyro"]
    np.testing.assert_array_equal(view["gyro"], windows.gyro[index])


@pytest.fixture()
def hapt_copy(tmp_path: Path) -> Path:
    target = tmp_path / "HAPT.pkl.gz"
    shutil.copyfile(hapt.hapt_pickle_path(), target)
    return target


def test_truncated_file_gives_clear_error(hapt_copy):
    data = hapt_copy.read_bytes()
    hapt_copy.write_bytes(data[: len(data) // 3])
    with pytest.raises(DataError, match="cannot read HAPT pickle"):
        hapt.read_hapt_recordings(hapt_copy)


def test_garbage_file_gives_clear_error(hapt_copy):
    hapt_copy.write_bytes(b"not a gzip file at all" * 50)
    with pytest.raises(DataError, match="cannot read HAPT pickle"):
        hapt.read_hapt_recordings(hapt_copy)


def test_foreign_pickle_globals_are_refused(tmp_path):
    target = tmp_path / "evil.pkl.gz"
    with gzip.open(target, "wb") as handle:
        pickle.dump({"x": Path("/")}, handle, protocol=2)
    with pytest.raises(DataError, match="pathlib"):
        hapt.read_hapt_recordings(target)


def test_modern_pickles_with_other_globals_are_refused(tmp_path):
    frame = pd.DataFrame({c: np.zeros(3) for c in (*hapt.ACC_COLUMNS, *hapt.GYRO_COLUMNS)})
    target = tmp_path / "other.pkl.gz"
    with gzip.open(target, "wb") as handle:
        pickle.dump({1: [frame]}, handle)
    with pytest.raises(DataError, match="never does"):
        hapt.read_hapt_recordings(target)


def _frame(labels: np.ndarray) -> pd.DataFrame:
    frame = pd.DataFrame(
        {c: np.zeros(labels.size) for c in (*hapt.ACC_COLUMNS, *hapt.GYRO_COLUMNS)}
    )
    frame["label"] = labels
    return frame


def test_content_validation():
    good = {s: [_frame(np.ones(200, dtype=np.int64))] for s in hapt.SUBJECTS}
    assert hapt.validate_recordings(good, Path("x")) is good
    bad_label = {**good, 3: [_frame(np.full(200, 13))]}
    with pytest.raises(DataError, match="labels outside"):
        hapt.validate_recordings(bad_label, Path("x"))
    missing_subject = {s: v for s, v in good.items() if s != 30}
    with pytest.raises(DataError, match=r"subjects 1\.\.30"):
        hapt.validate_recordings(missing_subject, Path("x"))
    no_gyro = {**good, 2: [_frame(np.ones(200, dtype=np.int64)).drop(columns=["gyro-z"])]}
    with pytest.raises(DataError, match="gyro-z"):
        hapt.validate_recordings(no_gyro, Path("x"))
    nan_signal = _frame(np.ones(200, dtype=np.int64))
    nan_signal.loc[5, "acc-y"] = np.nan
    with pytest.raises(DataError, match="non-finite"):
        hapt.validate_recordings({**good, 4: [nan_signal]}, Path("x"))


def test_windowing_on_a_synthetic_recording():
    labels = np.array([-1] * 10 + [2] * 300 + [7] * 50 + [5] * 127 + [6] * 200)
    frame = pd.DataFrame({c: np.arange(labels.size, dtype=float) for c in hapt.ACC_COLUMNS})
    for c in hapt.GYRO_COLUMNS:
        frame[c] = 0.0
    frame["label"] = labels
    recordings = {1: [frame]}
    windows = hapt.window_recordings(recordings)
    # label 2: starts 10, 74, 138 (3 windows); label 5 run too short; label 6: starts 487, 551.
    assert windows.labels.tolist() == [1, 1, 1, 5, 5]
    assert windows.acc[:, 0, 0].tolist() == [10, 74, 138, 487, 551]
