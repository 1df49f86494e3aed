"""Half precision: each entry of the change rounded to the nearest float16 (2 bytes).

Error bound, per entry: ``|x - decode(x)| <= 2**-11 * |x|`` for ``|x| >= 2**-14`` (float16's
normal range) and ``<= 2**-25`` below it (half of float16's subnormal spacing).  A change with
an entry beyond float16's largest finite value (65504) cannot be encoded: the sender gets a
ProtocolError instead of sending an infinity (a change that large is a broken training anyway).
Decoding is a cast to float32, which is exact.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from consensus.codecs.abc import Codec, Parts, expect_part
from fedchain.errors import ProtocolError

FP16_MAX = 65504.0


class Fp16(Codec):
    name = "fp16"

    def parts(self) -> dict[str, torch.dtype]:
        return {"half": torch.float16}

    def encode(self, change: torch.Tensor) -> Parts:
        largest = float(change.abs().max()) if change.numel() else 0.0
        if not largest <= FP16_MAX:
            raise ProtocolError(
                f"a change of magnitude {largest:.3g} does not fit float16 (largest {FP16_MAX:g}); "
                "use another encoding for this task"
            )
        return {"half": change.detach().to(torch.float16).contiguous()}

    def decode(
        self, parts: Mapping[str, torch.Tensor], shape: torch.Size, name: str
    ) -> torch.Tensor:
        return expect_part(parts, "half", name, torch.float16, tuple(shape)).to(torch.float32)

    def max_part_bytes(self, numel: int) -> int:
        return 2 * numel
