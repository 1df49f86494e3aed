"""Fixed-point encoding of a member's change: integers mod 2**64, so masked sums are exact.

A float sum depends on the order of additions; an integer sum mod 2**64 does not, and random
masks added mod 2**64 cancel exactly.  Each member:

1. clips its change from the round's global model to L2 norm ``clip_norm`` (so every
   coordinate lies in ``[-clip_norm, clip_norm]``),
2. rounds ``change * 2**fraction_bits`` to the nearest integer (ties to even), and
3. multiplies by its weight (sample count) as an integer, so FedAvg is ``sum / sum of weights``.

The sum of the round's encoded values must stay inside the signed range ``(-2**63, 2**63)`` or
it wraps and decodes to garbage.  :meth:`FixedPoint.check_capacity` makes this bound explicit:
``(clip_norm * 2**fraction_bits + 1) * total_weight < 2**63`` where ``total_weight`` is the
largest possible sum of the members' weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from fedchain.errors import ConfigError, ProtocolError

MODULUS_BITS = 64
"""Arithmetic is mod 2**64 (numpy uint64 wraps exactly so)."""
SIGNED_LIMIT = 1 << (MODULUS_BITS - 1)

Residues = npt.NDArray[np.uint64]
"""A vector of integers mod 2**64."""


class CapacityError(ConfigError):
    """The fixed-point range cannot hold the sum of a round's updates without wrapping."""


@dataclass(frozen=True)
class FixedPoint:
    """``clip_norm`` bounds each change's L2 norm; ``fraction_bits`` is the precision
    (a step of ``2**-fraction_bits``)."""

    clip_norm: float
    fraction_bits: int = 24

    def __post_init__(self) -> None:
        if not (math.isfinite(self.clip_norm) and self.clip_norm > 0):
            raise ConfigError(f"clip_norm must be a positive number, got {self.clip_norm}")
        if not 0 <= self.fraction_bits <= 52:
            raise ConfigError(f"fraction_bits must be in 0..52, got {self.fraction_bits}")

    @property
    def scale(self) -> float:
        return float(2**self.fraction_bits)

    @property
    def max_abs_value(self) -> int:
        """The largest magnitude one encoded coordinate can have before weighting."""
        return math.floor(self.clip_norm * self.scale) + 1

    def max_total_weight(self) -> int:
        """The largest sum of weights whose weighted sum cannot overflow."""
        return (SIGNED_LIMIT - 1) // self.max_abs_value

    def check_capacity(self, total_weight: int) -> None:
        """CapacityError unless ``total_weight`` (e.g. members x max samples) fits the range."""
        if total_weight > self.max_total_weight():
            raise CapacityError(
                f"a total weight of {total_weight} could overflow the 64-bit fixed-point sum "
                f"(clip_norm {self.clip_norm:g}, fraction_bits {self.fraction_bits}: at most "
                f"{self.max_total_weight()}); lower fraction_bits, clip_norm or the task's "
                "max_samples"
            )

    def clip(self, change: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``change`` scaled down to L2 norm ``clip_norm`` if longer.

        Only the member itself computes its norm (nobody else sees the change), so a BLAS norm
        is fine here; the exact, order-free arithmetic starts at the integers.
        """
        norm = float(np.linalg.norm(change))
        if norm <= self.clip_norm:
            return change
        return change * (self.clip_norm / norm)

    def encode(self, change: npt.NDArray[np.float64], weight: int) -> Residues:
        """``weight * round(clip(change) * 2**fraction_bits)`` mod 2**64.

        ProtocolError if the change is not finite or the weight not positive.
        """
        if weight <= 0:
            raise ProtocolError(f"a member's weight must be a positive sample count, got {weight}")
        self.check_capacity(weight)  # one member alone must not overflow either
        if not np.isfinite(change).all():
            raise ProtocolError("the change holds NaN or infinite values; nothing is encoded")
        q = np.rint(self.clip(change) * self.scale).astype(np.int64)
        if int(np.abs(q).max(initial=0)) > self.max_abs_value:  # guards the bound's arithmetic
            raise ProtocolError("a clipped coordinate exceeds the fixed-point bound")
        return (q * np.int64(weight)).astype(np.uint64)

    def decode_mean(self, total: Residues, total_weight: int) -> npt.NDArray[np.float64]:
        """The weighted mean change from the sum of encoded values and the sum of weights."""
        if total_weight <= 0:
            raise ProtocolError(f"the sum of weights must be positive, got {total_weight}")
        signed = total.astype(np.int64)  # two's complement: the sum is known to be in range
        return signed.astype(np.float64) / float(total_weight) / self.scale


def add_mod(a: Residues, b: Residues) -> Residues:
    """``a + b`` mod 2**64."""
    return a + b


def sub_mod(a: Residues, b: Residues) -> Residues:
    """``a - b`` mod 2**64."""
    return a - b
