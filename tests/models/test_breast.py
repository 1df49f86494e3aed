"""The BreastMNIST loader on the real shared file."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fedchain.errors import DataError
from models.datasets import breast
from models.datasets.breast import load_breastmnist

SHARED = breast.repo_root() / breast.SHARED_RELATIVE
needs_shared = pytest.mark.skipif(
    not SHARED.is_file(), reason=f"BreastMNIST not present at {breast.SHARED_RELATIVE}"
)


@needs_shared
def test_counts_shapes_and_balance():
    splits = load_breastmnist(allow_download=False)
    for split in breast.SPLITS:
        x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
        n, negatives, positives = breast.EXPECTED_COUNTS[split]
        assert x.shape == (n, 1, 28, 28) and x.dtype == np.float32
        assert y.dtype == np.int64 and np.bincount(y).tolist() == [negatives, positives]
        assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    # the three splits hold different images
    assert not np.array_equal(splits.x_train[:5], splits.x_test[:5])


@needs_shared
def test_environment_variable_points_at_a_file_or_directory(tmp_path, monkeypatch):
    copy = tmp_path / "breastmnist_28.npz"
    shutil.copyfile(SHARED, copy)
    monkeypatch.setenv(breast.ENV_VAR, str(tmp_path))
    assert load_breastmnist(allow_download=False).source == str(copy)
    monkeypatch.setenv(breast.ENV_VAR, str(copy))
    assert load_breastmnist(allow_download=False).source == str(copy)
    monkeypatch.setenv(breast.ENV_VAR, str(tmp_path / "nowhere.npz"))
    with pytest.raises(DataError, match="does not exist"):
        load_breastmnist(allow_download=False)


@needs_shared
def test_truncated_file_gives_clear_error(tmp_path):
    copy = tmp_path / "breastmnist_28.npz"
    copy.write_bytes(SHARED.read_bytes()[:100_000])
    with pytest.raises(DataError, match="corrupt, truncated"):
        load_breastmnist(copy)
    with pytest.raises(DataError, match="cannot read BreastMNIST"):
        load_breastmnist(copy, verify_digest=False)


def _write(path: Path, **overrides: np.ndarray) -> Path:
    rng = np.random.default_rng(0)
    arrays: dict[str, np.ndarray] = {}
    for split, (n, neg, pos) in breast.EXPECTED_COUNTS.items():
        arrays[f"{split}_images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = np.array([0] * neg + [1] * pos, dtype=np.uint8)[:, None]
    arrays.update(overrides)
    savez: Any = np.savez
    savez(path, **arrays)
    return path


def test_content_checks_on_resaved_files(tmp_path):
    good = _write(tmp_path / "good.npz")
    with pytest.raises(DataError, match="neither"):
        load_breastmnist(good)
    assert load_breastmnist(good, verify_digest=False).y_val.shape == (78,)  # (N, 1) labels ok
    bad = _write(tmp_path / "b1.npz", test_labels=np.full((156, 1), 2, dtype=np.uint8))
    with pytest.raises(DataError, match="label value"):
        load_breastmnist(bad, verify_digest=False)
    short = _write(tmp_path / "b2.npz", val_images=np.zeros((70, 28, 28), dtype=np.uint8))
    with pytest.raises(DataError, match="val_images"):
        load_breastmnist(short, verify_digest=False)
    wrong_dtype = _write(tmp_path / "b3.npz", train_images=np.zeros((546, 28, 28), np.float64))
    with pytest.raises(DataError, match="uint8"):
        load_breastmnist(wrong_dtype, verify_digest=False)
    flipped = np.array([1] * 147 + [0] * 399, dtype=np.uint8)
    imbalanced = _write(tmp_path / "b4.npz", train_labels=flipped)
    with pytest.raises(DataError, match="per class"):
        load_breastmnist(imbalanced, verify_digest=False)


def test_missing_medmnist_is_explained(tmp_path, monkeypatch):
    monkeypatch.delenv(breast.ENV_VAR, raising=False)
    monkeypatch.setattr(breast, "SHARED_RELATIVE", Path("no-such-dir") / "x.npz")
    monkeypatch.setitem(sys.modules, "medmnist", None)  # makes the import fail
    monkeypatch.setenv("FEDCHAIN_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="medmnist"):
        load_breastmnist()
    with pytest.raises(DataError, match="no BreastMNIST file"):
        load_breastmnist(allow_download=False)
