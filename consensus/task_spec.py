"""The task spec: what a federation agreed to train, stored on IPFS and named on-chain.

Every peer reads the same spec by the CID recorded in the contract, so the model
architecture, the aggregation rule and the training hyper-parameters are part of
the federation's agreement rather than of each peer's local configuration.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fedchain.errors import ProtocolError

MAX_SPEC_BYTES = 64 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Frozen):
    arch: str = Field(min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class TrainingSpec(_Frozen):
    epochs: int = Field(ge=1, le=10_000)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    seed: int = Field(ge=0)
    weight_decay: float = Field(default=0.0, ge=0)


class TaskSpec(_Frozen):
    version: int = Field(default=1, ge=1, le=1)
    name: str = Field(min_length=1, max_length=128)
    dataset: str = Field(min_length=1)
    model: ModelSpec
    aggregation: str = "fedavg"
    training: TrainingSpec
    max_abs_weight: float = Field(default=1e6, gt=0)
    """An update with any weight of larger magnitude is left out: huge but finite values would
    overflow the aggregate's outputs on every peer (a one-member denial of service)."""

    def to_bytes(self) -> bytes:
        """Canonical JSON, so the same spec always has the same CID."""
        return json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskSpec:
        if len(data) > MAX_SPEC_BYTES:
            raise ProtocolError(f"task spec of {len(data)} bytes exceeds {MAX_SPEC_BYTES}")
        try:
            return cls.model_validate(json.loads(data))
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"task spec is invalid: {str(exc).splitlines()[0]}") from None
