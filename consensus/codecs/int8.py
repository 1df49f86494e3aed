"""Symmetric per-tensor 8-bit quantization of the change (1 byte per entry + one float32 scale).

``scale = max|x| / 127`` (float32), ``q = round(x / scale)`` in [-127, 127] (int8), decoded as
``q * scale``: one IEEE float32 multiply per entry, so every process gets the same bits.
Error bound, per entry: ``|x - q * scale| <= scale / 2 = max|x| / 254``, up to float32
rounding of the multiply (a relative ``2**-24`` of the entry, far below the bound).  An
all-zero change has scale 0.  Symmetric rather than affine: zero stays exactly zero and the
decoder is a single multiply, with no offset to agree on.

A receiver refuses a scale that is negative or not finite, a ``q`` of -128 (outside the
symmetric range, never produced), and a decoded change that overflows.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from consensus.codecs.abc import Codec, Parts, expect_part
from fedchain.errors import ProtocolError

LEVELS = 127


class Int8(Codec):
    name = "int8"

    def parts(self) -> dict[str, torch.dtype]:
        return {"q": torch.int8, "scale": torch.float32}

    def encode(self, change: torch.Tensor) -> Parts:
        x = change.detach().to(torch.float32)
        largest = x.abs().max() if x.numel() else torch.tensor(0.0)
        scale = (largest / LEVELS).to(torch.float32).reshape(1)
        if float(scale) > 0:
            q = torch.round(x / scale).clamp_(-LEVELS, LEVELS)
        else:
            q = torch.zeros_like(x)
        return {"q": q.to(torch.int8).contiguous(), "scale": scale.contiguous()}

    def decode(
        self, parts: Mapping[str, torch.Tensor], shape: torch.Size, name: str
    ) -> torch.Tensor:
        q = expect_part(parts, "q", name, torch.int8, tuple(shape))
        scale = expect_part(parts, "scale", name, torch.float32, (1,))
        if float(scale) < 0:
            raise ProtocolError(f"tensor {name!r}: int8 scale {float(scale):.3g} is negative")
        if q.numel() and int(q.min()) < -LEVELS:
            raise ProtocolError(f"tensor {name!r}: int8 value -128 is outside the symmetric range")
        change = q.to(torch.float32) * scale
        if not bool(torch.isfinite(change).all()):
            raise ProtocolError(f"tensor {name!r}: int8 scale {float(scale):.3g} overflows float32")
        return change

    def max_part_bytes(self, numel: int) -> int:
        return numel + 4
