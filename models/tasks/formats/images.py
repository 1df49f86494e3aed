"""Images: an ``.npz`` or a folder of PNGs with a ``labels.csv``.

* ``.npz``: ``images`` uint8 (scaled to [0, 1]) or float ``[n, h, w]`` or ``[n, c, h, w]``;
  ``labels`` integer ``[n]``.
* folder: ``*.png`` files (grayscale -> 1 channel, RGB -> 3) and ``labels.csv`` with the header
  ``file,label``; every PNG needs a label row and every row an existing PNG.

Result: float32 ``[n, c, h, w]`` and int64 labels; the task checks size, channels and classes.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fedchain.errors import DataError
from models.tasks.formats._npz import as_float_signal, labels_of, read_npz

MAX_IMAGES = 200_000


def read_image_npz(path: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    arrays = read_npz(path, where)
    if "images" not in arrays:
        raise DataError(f"{where}: no array 'images'; found {sorted(arrays)}; add images [n,h,w]")
    images = arrays["images"]
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise DataError(
            f"{where}: 'images' has shape {list(arrays['images'].shape)}; expected [n, h, w] or "
            "[n, c, h, w]"
        )
    x = np.ascontiguousarray(as_float_signal(images, "images", where))
    return x, labels_of(arrays, x.shape[0], where)


def _read_png(path: Path, where: str) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.load()
            if image.format != "PNG":
                raise DataError(f"{where}: {path.name} is {image.format}, not PNG")
            mode = image.mode
            if mode in ("L", "I;16", "I", "1", "P", "LA"):
                pixels = np.asarray(image.convert("L"), dtype=np.uint8)[None]
            else:
                pixels = np.asarray(image.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1)
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(f"{where}: cannot read {path.name} as PNG ({exc}); re-save it") from None
    return pixels.astype(np.float32) / np.float32(255.0)


def read_png_folder(folder: Path, where: str) -> tuple[np.ndarray, np.ndarray]:
    if not folder.is_dir():
        raise DataError(f"{where} is not a folder of PNGs")
    labels_csv = folder / "labels.csv"
    if not labels_csv.is_file():
        raise DataError(f"{where}: no labels.csv; add one with the header 'file,label'")
    try:
        with labels_csv.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(
            f"{where}/labels.csv: cannot read it ({exc}); save it as UTF-8 CSV"
        ) from None
    if not rows or [c.strip() for c in rows[0]][:2] != ["file", "label"]:
        raise DataError(f"{where}/labels.csv: the header must be 'file,label'")
    labels: dict[str, int] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) < 2 or not row[0].strip():
            raise DataError(f"{where}/labels.csv: line {line} needs 'file,label'")
        name, cell = row[0].strip(), row[1].strip()
        try:
            label = int(cell)
        except ValueError:
            raise DataError(
                f"{where}/labels.csv: line {line}, column 'label': {cell!r} is not a class "
                "index; use integers from 0"
            ) from None
        if name in labels:
            raise DataError(f"{where}/labels.csv: line {line}: {name!r} is labelled twice")
        if not (folder / name).is_file():
            raise DataError(
                f"{where}/labels.csv: line {line}: file {name!r} does not exist in the folder; "
                "add the image or drop the row"
            )
        labels[name] = label
    pngs = sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png")
    unlabelled = [name for name in pngs if name not in labels]
    if unlabelled:
        more = f" (and {len(unlabelled) - 1} more)" if len(unlabelled) > 1 else ""
        raise DataError(
            f"{where}: {unlabelled[0]}{more} has no row in labels.csv; add 'file,label' rows "
            "or remove the image"
        )
    if not labels:
        raise DataError(f"{where}: no labelled PNG images; add images and labels.csv rows")
    if len(labels) > MAX_IMAGES:
        raise DataError(f"{where}: {len(labels)} images is over the limit of {MAX_IMAGES}")
    names = sorted(labels)
    images = [_read_png(folder / name, where) for name in names]
    first = images[0].shape
    for name, image in zip(names, images, strict=True):
        if image.shape != first:
            raise DataError(
                f"{where}: {name} is {list(image.shape)} (channels, h, w), {names[0]} "
                f"{list(first)}; resize all images to one size and mode"
            )
    x = np.ascontiguousarray(np.stack(images))
    y = np.array([labels[name] for name in names], dtype=np.int64)
    return x, y
