"""Top-k sparsification of the change: only the ``k`` entries of largest magnitude travel.

Per tensor, ``k = min(numel, max(1, floor(fraction * numel + 0.5)))`` entries are kept
(exactly, as float32) with their flat positions (int32, ascending); every other entry of the
change decodes as zero.  Ties in magnitude keep the lower position (a stable sort), so the
sender's choice is reproducible.  Bytes: ``8 * k`` per tensor, i.e. about ``fraction * 8``
bytes per parameter against 4 for float32.

Error bound, per entry: kept entries are exact; a dropped entry's error is its own value, at
most the smallest kept magnitude.  With error feedback (``error_feedback``) the sender keeps
what was dropped and adds it to its next round's change (:mod:`consensus.codecs.feedback`), so
nothing is lost for good, only delayed; that residual never leaves the sender.

A receiver refuses indices that are not int32, out of range, not strictly ascending
(unsorted or duplicated), more than ``k``, or whose count differs from the values'; and
values that are not finite.  Decoding is a scatter into zeros: exact, the same bits everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch

from consensus.codecs.abc import Codec, Parts, expect_part
from fedchain.errors import ConfigError, ProtocolError

MAX_NUMEL = 2**31 - 1
"""Positions are int32: a tensor with more entries cannot be top-k encoded."""


class TopK(Codec):
    name = "topk"
    error_feedback = True

    def __init__(self, fraction: float) -> None:
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float)):
            raise ConfigError(f"topk fraction must be a number in (0, 1], got {fraction!r}")
        if not 0 < fraction <= 1:
            raise ConfigError(f"topk fraction must be in (0, 1], got {fraction}")
        self.fraction = float(fraction)

    def params(self) -> dict[str, Any]:
        return {"fraction": self.fraction}

    def kept(self, numel: int) -> int:
        """How many entries of a tensor of ``numel`` entries travel (the receiver's bound)."""
        if numel <= 0:
            return 0
        return min(numel, max(1, math.floor(self.fraction * numel + 0.5)))

    def parts(self) -> dict[str, torch.dtype]:
        return {"indices": torch.int32, "values": torch.float32}

    def encode(self, change: torch.Tensor) -> Parts:
        flat = change.detach().to(torch.float32).reshape(-1)
        if flat.numel() > MAX_NUMEL:
            raise ConfigError(f"topk cannot encode a tensor of {flat.numel()} entries (int32)")
        k = self.kept(flat.numel())
        by_size = torch.sort(flat.abs(), descending=True, stable=True).indices[:k]
        positions = torch.sort(by_size).values
        return {
            "indices": positions.to(torch.int32).contiguous(),
            "values": flat[positions].contiguous(),
        }

    def decode(
        self, parts: Mapping[str, torch.Tensor], shape: torch.Size, name: str
    ) -> torch.Tensor:
        numel = math.prod(shape)
        indices = expect_part(parts, "indices", name, torch.int32)
        values = expect_part(parts, "values", name, torch.float32)
        if indices.dim() != 1 or values.dim() != 1:
            raise ProtocolError(f"tensor {name!r}: top-k indices and values must be 1-D")
        count = indices.numel()
        if values.numel() != count:
            raise ProtocolError(
                f"tensor {name!r}: {count} top-k indices but {values.numel()} values"
            )
        if count > self.kept(numel):
            raise ProtocolError(
                f"tensor {name!r}: {count} top-k entries, more than the {self.kept(numel)} "
                f"allowed for {numel} entries at fraction {self.fraction:g}"
            )
        if count:
            low, high = int(indices.min()), int(indices.max())
            if low < 0 or high >= numel:
                raise ProtocolError(
                    f"tensor {name!r}: top-k index {low if low < 0 else high} is out of range "
                    f"[0, {numel})"
                )
            steps = indices[1:] - indices[:-1]
            if bool((steps == 0).any()):
                raise ProtocolError(f"tensor {name!r}: top-k indices hold a duplicate")
            if bool((steps < 0).any()):
                raise ProtocolError(f"tensor {name!r}: top-k indices are not in ascending order")
        dense = torch.zeros(numel, dtype=torch.float32)
        dense[indices.to(torch.int64)] = values
        return dense.reshape(shape)

    def max_part_bytes(self, numel: int) -> int:
        return 8 * self.kept(numel)
