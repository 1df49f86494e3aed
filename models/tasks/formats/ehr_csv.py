"""EHR records as a CSV whose columns the task spec names (``task_args``).

Schema (agreed by the federation, so every institution encodes features identically)::

    {"features": [{"name": "age", "type": "float"},
                  {"name": "visits", "type": "int"},
                  {"name": "sex", "type": "category", "values": [0, 1]},
                  {"name": "cp", "type": "category", "values": ["typical", "atypical", "other"]}],
     "label": {"name": "target", "classes": 2}}

Encoding, feature by feature in schema order: ``float``/``int`` give one column; a
``category`` with k values gives k-1 one-hot columns (its first value is the reference level).
Columns the schema does not name are ignored. Labels are integers ``0..classes-1``. Every
cell is checked; an empty, ``NA``, ``NaN`` or ``?`` cell is missing and refused (fill the value
or drop the row). Features are z-scored with the local train split's statistics.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedchain.errors import ConfigError, DataError

MISSING = frozenset({"", "na", "nan", "n/a", "?", "null", "none"})
MAX_BYTES = 512 * 1024 * 1024


class FeatureSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    type: Literal["float", "int", "category"]
    values: tuple[int | float | str, ...] | None = None

    @model_validator(mode="after")
    def _values(self) -> FeatureSchema:
        if self.type == "category":
            if self.values is None or len(self.values) < 2:
                raise ValueError(f"category feature {self.name!r} needs 'values' (at least 2)")
            if len({str(v) for v in self.values}) != len(self.values):
                raise ValueError(f"category feature {self.name!r} repeats a value")
        elif self.values is not None:
            raise ValueError(f"feature {self.name!r} of type {self.type!r} takes no 'values'")
        return self

    @property
    def width(self) -> int:
        return 1 if self.values is None else len(self.values) - 1


class LabelSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    classes: int = Field(ge=2, le=1000)


class EhrSchema(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    features: tuple[FeatureSchema, ...] = Field(min_length=1)
    label: LabelSchema

    @model_validator(mode="after")
    def _unique(self) -> EhrSchema:
        names = [f.name for f in self.features] + [self.label.name]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"column(s) {dup} named more than once")
        return self

    @property
    def width(self) -> int:
        """Encoded feature count (the model's ``in_features``)."""
        return sum(f.width for f in self.features)

    def feature_names(self) -> tuple[str, ...]:
        names: list[str] = []
        for f in self.features:
            if f.values is None:
                names.append(f.name)
            else:
                names += [f"{f.name}={v}" for v in f.values[1:]]
        return tuple(names)


def parse_schema(task_args: Mapping[str, Any], task: str) -> EhrSchema:
    """The schema in a spec's ``task_args`` (ConfigError naming the problem)."""
    try:
        return EhrSchema.model_validate(
            {"features": task_args.get("features"), "label": task_args.get("label")}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(
            f"task {task!r}: task_args.{where}: {first['msg']} (see models/README.md, "
            "'Bring your own data')"
        ) from None


def _number(cell: str) -> float | None:
    try:
        value = float(cell)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _category_lookup(values: tuple[int | float | str, ...]) -> tuple[dict[str, int], list[float]]:
    by_text = {str(v).strip(): i for i, v in enumerate(values)}
    numeric = [
        float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan
        for v in values
    ]
    return by_text, numeric


def read_ehr_csv(path: Path, schema: EhrSchema, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Encoded features ``[n, schema.width]`` (float64, unscaled) and labels ``[n]`` (int64)."""
    if not path.is_file():
        raise DataError(f"{where} is not a file; point data.path at your CSV")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{where} is over {MAX_BYTES >> 20} MiB; split or trim the file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{where}: cannot read the CSV ({exc}); save it as UTF-8 CSV") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise DataError(f"{where} is empty; it needs a header row and one row per record")
    header = [cell.strip() for cell in rows[0]]
    needed = [f.name for f in schema.features] + [schema.label.name]
    missing = [name for name in needed if name not in header]
    if missing:
        raise DataError(
            f"{where}: header lacks column(s) {missing} named by the task spec; found "
            f"{header}; rename or add the columns"
        )
    position = {name: header.index(name) for name in needed}
    lookups = {f.name: _category_lookup(f.values) for f in schema.features if f.values is not None}
    records = [
        (line, row) for line, row in enumerate(rows[1:], start=2) if any(c.strip() for c in row)
    ]
    if not records:
        raise DataError(f"{where} has a header but no records; add one row per patient")
    x = np.zeros((len(records), schema.width), dtype=np.float64)
    y = np.zeros(len(records), dtype=np.int64)
    for i, (line, row) in enumerate(records):
        if len(row) != len(header):
            raise DataError(
                f"{where}: line {line} has {len(row)} fields, the header {len(header)}; "
                "fix the row (quote values holding commas)"
            )
        column = 0
        for feature in schema.features:
            cell = row[position[feature.name]].strip()
            at = f"{where}: line {line}, column {feature.name!r}"
            if cell.lower() in MISSING:
                raise DataError(f"{at}: the value is missing; fill the value or drop the row")
            if feature.values is None:
                value = _number(cell)
                if value is None:
                    raise DataError(
                        f"{at}: {cell!r} is not a number; fix the value or drop the row"
                    )
                if feature.type == "int" and not value.is_integer():
                    raise DataError(
                        f"{at}: {cell!r} is not an integer; fix the value or drop the row"
                    )
                x[i, column] = value
                column += 1
                continue
            by_text, numeric = lookups[feature.name]
            level = by_text.get(cell)
            if level is None:
                value = _number(cell)
                matches = [k for k, v in enumerate(numeric) if value is not None and v == value]
                level = matches[0] if matches else None
            if level is None:
                raise DataError(
                    f"{at}: {cell!r} is not one of the agreed values {list(feature.values or ())}; "
                    "fix the value or drop the row"
                )
            if level > 0:
                x[i, column + level - 1] = 1.0
            column += feature.width
        cell = row[position[schema.label.name]].strip()
        at = f"{where}: line {line}, label column {schema.label.name!r}"
        if cell.lower() in MISSING:
            raise DataError(f"{at}: the label is missing; fill it or drop the row")
        value = _number(cell)
        if value is None or not value.is_integer():
            raise DataError(
                f"{at}: {cell!r} is not a class index; use integers 0..{schema.label.classes - 1}"
            )
        if not 0 <= value < schema.label.classes:
            raise DataError(
                f"{at}: label {int(value)} is outside 0..{schema.label.classes - 1} (the task "
                f"has {schema.label.classes} classes); fix the label or drop the row"
            )
        y[i] = int(value)
    return x, y
