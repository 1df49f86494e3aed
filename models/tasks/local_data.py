"""What an institution holds locally: the ``[data]`` section of its peer config.

Either a built-in ``partition`` of a task's packaged data (demos, the simulator) or a ``path``
to the institution's own files (bring your own data)::

    [data]
    partition = "cleveland"

    [data]
    path = "records/ehr.csv"      # relative to the config file's folder
    format = "csv"                # optional; inferred: .csv, .npz, a folder -> png-folder
    test_fraction = 0.2           # the local test split drawn from own files
    split_seed = 0
    modalities = ["acc"]          # optional: the modalities this institution records

Nothing here leaves the institution: the task spec names what is trained, this names where the
institution's own records are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from fedchain.errors import DataError

DataFormat = Literal["csv", "npz", "png-folder"]
FORMATS: tuple[str, ...] = ("csv", "npz", "png-folder")


class LocalData(BaseModel):
    """Where this institution's own records are; the task is named by the task spec."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    partition: str | None = Field(default=None, min_length=1)
    path: Path | None = None
    format: DataFormat | None = None
    test_fraction: float = Field(default=0.2, gt=0, lt=1)
    split_seed: int = Field(default=0, ge=0)
    modalities: tuple[str, ...] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_source(self) -> LocalData:
        if (self.partition is None) == (self.path is None):
            raise ValueError(
                "give exactly one of data.partition (a built-in partition, e.g. 'cleveland') "
                "or data.path (this institution's own files)"
            )
        if self.format is not None and self.path is None:
            raise ValueError("data.format applies only with data.path")
        return self

    def resolved(self, base: Path) -> LocalData:
        """This section with a relative ``path`` resolved against ``base`` (the config's folder)."""
        if self.path is None or self.path.is_absolute():
            return self
        return self.model_copy(update={"path": (base / self.path).resolve()})

    @property
    def where(self) -> str:
        """How error messages name this data: ``data.path /x.csv`` or ``data.partition 'va'``."""
        if self.path is not None:
            return f"data.path {self.path}"
        return f"data.partition {self.partition!r}"

    def data_format(self) -> DataFormat:
        """The declared format, else inferred from the path (DataError if it cannot be)."""
        if self.path is None:
            raise DataError(f"{self.where}: a built-in partition has no file format")
        if self.format is not None:
            return self.format
        if self.path.is_dir():
            return "png-folder"
        suffix = self.path.suffix.lower()
        if suffix == ".csv":
            return "csv"
        if suffix == ".npz":
            return "npz"
        if not self.path.exists():
            raise DataError(f"{self.where} does not exist; point data.path at your data files")
        raise DataError(
            f"{self.where}: cannot tell the format from {self.path.name!r}; set data.format to "
            f"one of {', '.join(FORMATS)}"
        )

    def existing_path(self) -> Path:
        """``path``, checked to exist (DataError naming it otherwise)."""
        if self.path is None:
            raise DataError(f"{self.where}: no data.path given")
        if not self.path.exists():
            raise DataError(f"{self.where} does not exist; point data.path at your data files")
        return self.path
