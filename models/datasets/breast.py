"""BreastMNIST (28×28 breast ultrasound, binary): the imaging modality.

Source: MedMNIST v2 (Yang et al., Scientific Data 2023), derived from the Breast Ultrasound
Images dataset (Al-Dhabyani et al., Data in Brief 2020); licensed CC BY 4.0. Label 0 =
malignant, 1 = normal or benign. Official splits: train 546, val 78, test 156.

Where the file comes from, first match wins:

1. an explicit ``path`` argument, else the environment variable ``FEDCHAIN_BREASTMNIST`` (a
   ``.npz`` file or a directory holding ``breastmnist_28.npz`` or ``breastmnist.npz``);
2. the shared offline copy ``../shared/data/breastmnist/breastmnist_28.npz`` relative to the
   repository root (labels stored flat; its SHA-256 is checked);
3. the official file through the optional ``medmnist`` package, which downloads it when a
   network is available (its MD5 is checked). ``medmnist`` pulls in torchvision, so it is not a
   core dependency: ``pip install medmnist==3.0.2`` to enable this path.

The file must match one of the two known digests, and whatever the source, shapes, dtypes,
split sizes and label counts are validated.
"""

from __future__ import annotations

import hashlib
import importlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fedchain.errors import DataError, ServiceUnavailableError
from models.datasets._checks import require_labels_in, sha256_of

ENV_VAR = "FEDCHAIN_BREASTMNIST"
SHARED_RELATIVE = Path("..") / "shared" / "data" / "breastmnist" / "breastmnist_28.npz"
FILE_NAMES: tuple[str, ...] = ("breastmnist_28.npz", "breastmnist.npz")

#: SHA-256 of the shared offline copy (labels re-saved flat, see its README).
SHARED_SHA256 = "5e68d79723fb3a63a399b0a66b66451799fc2eb3651f469cec0b679cfd743b68"
#: MD5 of the official MedMNIST v2 file ``breastmnist.npz`` (as published by MedMNIST).
OFFICIAL_MD5 = "750601b1f35ba3300ea97c75c52ff8f6"

SPLITS: tuple[str, ...] = ("train", "val", "test")
#: (images, label-0 count, label-1 count) per split.
EXPECTED_COUNTS: dict[str, tuple[int, int, int]] = {
    "train": (546, 147, 399),
    "val": (78, 21, 57),
    "test": (156, 42, 114),
}
CLASS_NAMES: tuple[str, ...] = ("malignant", "normal_or_benign")


@dataclass(frozen=True)
class ImageSplits:
    """Images as float32 ``[n, 1, 28, 28]`` scaled to [0, 1]; labels int64 0/1."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str


def repo_root() -> Path:
    """The repository root (this file is ``<root>/models/datasets/breast.py``)."""
    return Path(__file__).resolve().parents[2]


def _md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _resolve_configured(path: Path) -> Path:
    if path.is_dir():
        for name in FILE_NAMES:
            if (path / name).is_file():
                return path / name
        raise DataError(f"directory {path} holds none of {list(FILE_NAMES)}")
    if not path.is_file():
        raise DataError(f"BreastMNIST file {path} does not exist")
    return path


def _download_with_medmnist(root: Path) -> Path:
    """Fetch the official 28×28 file with the ``medmnist`` package into ``root``."""
    try:
        medmnist: Any = importlib.import_module("medmnist")
        dataset_class = medmnist.BreastMNIST
    except (ImportError, AttributeError) as exc:
        raise DataError(
            "BreastMNIST is not available: no local file (set FEDCHAIN_BREASTMNIST or place it "
            f"at {SHARED_RELATIVE} next to the repository) and the optional package 'medmnist' "
            f"cannot be used ({type(exc).__name__}: {exc}); pip install medmnist==3.0.2"
        ) from exc
    root.mkdir(parents=True, exist_ok=True)
    try:
        dataset_class(split="test", download=True, root=str(root), size=28)
    except Exception as exc:  # medmnist raises bare RuntimeError/OSError on any network failure
        raise ServiceUnavailableError(
            f"medmnist could not download BreastMNIST into {root}: {exc}; without a network, "
            f"point {ENV_VAR} at a local copy"
        ) from exc
    return root / "breastmnist.npz"


def locate_breastmnist(path: Path | None = None, *, allow_download: bool = True) -> Path:
    """The file to read, by the order in the module docstring."""
    if path is not None:
        return _resolve_configured(Path(path))
    configured = os.environ.get(ENV_VAR)
    if configured:
        return _resolve_configured(Path(configured))
    shared = (repo_root() / SHARED_RELATIVE).resolve()
    if shared.is_file():
        return shared
    if not allow_download:
        raise DataError(f"no BreastMNIST file: set {ENV_VAR} or place it at {SHARED_RELATIVE}")
    cache = Path(os.environ.get("FEDCHAIN_DATA_DIR", Path.home() / ".medmnist"))
    return _download_with_medmnist(cache)


def _check_digest(path: Path) -> None:
    """Accept only the shared copy (by SHA-256) or the official release (by MD5)."""
    sha256 = sha256_of(path)
    if sha256 == SHARED_SHA256 or _md5_of(path) == OFFICIAL_MD5:
        return
    raise DataError(
        f"{path} (SHA-256 {sha256}) is neither the shared BreastMNIST copy ({SHARED_SHA256}) nor "
        f"the official MedMNIST file (MD5 {OFFICIAL_MD5}): it is corrupt, truncated or another "
        "release; restore the original file (or pass verify_digest=False for a re-saved copy)"
    )


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    keys = [f"{split}_{kind}" for split in SPLITS for kind in ("images", "labels")]
    try:
        with np.load(path, allow_pickle=False) as archive:
            missing = [key for key in keys if key not in archive.files]
            if missing:
                raise DataError(f"BreastMNIST file {path} lacks arrays {missing}")
            return {key: archive[key] for key in keys}
    except DataError:
        raise
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError, OSError, ...
        raise DataError(
            f"cannot read BreastMNIST file {path}: {type(exc).__name__}: {exc}"
        ) from exc


def _validated_split(arrays: dict[str, np.ndarray], split: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    n, negatives, positives = EXPECTED_COUNTS[split]
    if images.shape != (n, 28, 28) or images.dtype != np.uint8:
        raise DataError(
            f"BreastMNIST {split}_images is {images.dtype}{list(images.shape)}, "
            f"expected uint8[{n}, 28, 28]"
        )
    flat = labels.reshape(-1)
    if flat.shape != (n,) or labels.ndim not in (1, 2):
        raise DataError(f"BreastMNIST {split}_labels has shape {labels.shape}, expected ({n},)")
    require_labels_in(flat, (0, 1), f"BreastMNIST {split}_labels")
    counts = np.bincount(flat.astype(np.int64), minlength=2)
    if (int(counts[0]), int(counts[1])) != (negatives, positives):
        raise DataError(
            f"BreastMNIST {split} has {counts.tolist()} images per class, expected "
            f"[{negatives}, {positives}]"
        )
    x = (images.astype(np.float32) / 255.0)[:, None, :, :]
    return np.ascontiguousarray(x), flat.astype(np.int64)


def load_breastmnist(
    path: Path | None = None, *, allow_download: bool = True, verify_digest: bool = True
) -> ImageSplits:
    """The three official splits, validated (see the module docstring for where they come from).

    ``verify_digest=False`` skips the checksum (for a re-saved copy); contents are still checked.
    """
    source = locate_breastmnist(path, allow_download=allow_download)
    if verify_digest:
        _check_digest(source)
    arrays = _read_npz(source)
    x_train, y_train = _validated_split(arrays, "train")
    x_val, y_val = _validated_split(arrays, "val")
    x_test, y_test = _validated_split(arrays, "test")
    return ImageSplits(x_train, y_train, x_val, y_val, x_test, y_test, source=str(source))
