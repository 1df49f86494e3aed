"""No compression: the change travels as float32, exactly.

A task whose encoding is ``none`` sends its updates in the plain model format instead (the
trained weights themselves, as before encodings existed; :mod:`consensus.codecs.pipeline`), so
its update CIDs and the chain-only free-rider rule are unchanged.  This codec is the identity
on a change, kept for pipelines and tests that want a lossless stage.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from consensus.codecs.abc import Codec, Parts, expect_part


class NoCodec(Codec):
    """Error: none (bit-exact)."""

    name = "none"

    def parts(self) -> dict[str, torch.dtype]:
        return {"change": torch.float32}

    def encode(self, change: torch.Tensor) -> Parts:
        return {"change": change.detach().to(torch.float32).contiguous()}

    def decode(
        self, parts: Mapping[str, torch.Tensor], shape: torch.Size, name: str
    ) -> torch.Tensor:
        return expect_part(parts, "change", name, torch.float32, tuple(shape))

    def max_part_bytes(self, numel: int) -> int:
        return 4 * numel
