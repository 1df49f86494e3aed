"""Validation helpers shared by the loaders.

Every loader checks what it read before handing it to training, so a damaged or
substituted file fails loudly at load time instead of producing a quietly wrong model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fedchain.errors import DataError


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks so large files need little memory."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_checksum(path: Path, expected: str, what: str) -> None:
    """Raise DataError unless ``path`` hashes to ``expected``."""
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(
            f"{what} at {path} has SHA-256 {actual}, expected {expected}: the file is corrupt, "
            "truncated or a different release; replace it with the original file"
        )


def require_columns(present: Iterable[str], needed: Iterable[str], what: str) -> None:
    """Raise DataError naming every column of ``needed`` that is missing."""
    have = set(present)
    missing = [name for name in needed if name not in have]
    if missing:
        raise DataError(f"{what} lacks column(s) {missing}; found {sorted(have)}")


def require_labels_in(labels: np.ndarray, allowed: Iterable[int], what: str) -> None:
    """Raise DataError if any label falls outside ``allowed``."""
    allowed_set = set(int(v) for v in allowed)
    found = set(int(v) for v in np.unique(labels))
    stray = sorted(found - allowed_set)
    if stray:
        raise DataError(f"{what} has label value(s) {stray}; expected only {sorted(allowed_set)}")


def require_finite(array: np.ndarray, what: str) -> None:
    """Raise DataError if an array holds NaN or infinity."""
    if not np.all(np.isfinite(array)):
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        raise DataError(f"{what} holds {bad} non-finite value(s) (NaN or inf)")
