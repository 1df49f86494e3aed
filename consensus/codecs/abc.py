"""The one small interface every update codec implements.

A codec turns the *change* of one float32 tensor (the member's trained weights minus the
round's global model) into a few named parts (``values``, ``indices``, ``scale``, ...), and
back.  Decoding runs on untrusted parts: a codec checks every part's dtype, shape, range and
finiteness itself and raises :class:`~fedchain.errors.ProtocolError` naming the tensor and what
is wrong, so a receiver leaves the update out instead of crashing.

Decoding must give the same bits in every process: only exact operations (casts, scatter,
one IEEE float32 multiply per entry) are allowed, never reductions or fused multiply-adds.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any, ClassVar

import torch

from fedchain.errors import ProtocolError

Parts = dict[str, torch.Tensor]


class Codec(ABC):
    """Encodes the change of one float32 tensor; subclasses set ``name`` and take their
    parameters as keyword arguments of ``__init__`` (``ConfigError`` naming a bad one)."""

    name: ClassVar[str]
    error_feedback: ClassVar[bool] = False
    """True when the sender should keep what the encoding dropped and add it to its next
    round's change (:mod:`consensus.codecs.feedback`)."""

    @abstractmethod
    def parts(self) -> dict[str, torch.dtype]:
        """The parts every encoded tensor has, with their dtypes."""

    @abstractmethod
    def encode(self, change: torch.Tensor) -> Parts:
        """The parts for ``change`` (float32, any shape); deterministic."""

    @abstractmethod
    def decode(
        self, parts: Mapping[str, torch.Tensor], shape: torch.Size, name: str
    ) -> torch.Tensor:
        """The float32 change of ``shape`` the parts stand for; ProtocolError when malformed."""

    @abstractmethod
    def max_part_bytes(self, numel: int) -> int:
        """The most bytes the parts of a tensor of ``numel`` entries may take."""

    def params(self) -> dict[str, Any]:
        """The parameters that travel in the wire format's metadata."""
        return {}

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "params": self.params()}


def expect_part(
    parts: Mapping[str, torch.Tensor],
    part: str,
    name: str,
    dtype: torch.dtype,
    shape: tuple[int, ...] | None = None,
) -> torch.Tensor:
    """``parts[part]`` checked to be ``dtype`` (and ``shape`` when given) and, if it is a
    floating-point part, finite."""
    tensor = parts[part]
    if tensor.dtype != dtype:
        raise ProtocolError(f"tensor {name!r}: part {part!r} is {tensor.dtype}, expected {dtype}")
    if shape is not None and tuple(tensor.shape) != shape:
        raise ProtocolError(
            f"tensor {name!r}: part {part!r} has shape {tuple(tensor.shape)}, expected {shape}"
        )
    if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
        raise ProtocolError(f"tensor {name!r}: part {part!r} holds NaN or infinite values")
    return tensor
