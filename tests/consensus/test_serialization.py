from __future__ import annotations

import pytest
import torch

from consensus.serialization import weights_from_bytes, weights_to_bytes
from fedchain.errors import ProtocolError

REF = {"linear.weight": torch.zeros(2, 13), "linear.bias": torch.zeros(2)}


def test_round_trip_and_canonical_order() -> None:
    w = {"linear.bias": torch.ones(2), "linear.weight": torch.full((2, 13), 0.5)}
    data = weights_to_bytes(w)
    assert data == weights_to_bytes(dict(reversed(list(w.items()))))
    back = weights_from_bytes(data, reference=REF)
    assert torch.equal(back["linear.weight"], w["linear.weight"])


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"", "not a valid safetensors"),
        (b"\xff" * 64, "not a valid safetensors"),
        (weights_to_bytes({"linear.weight": torch.zeros(2, 13)}), "missing"),
        (weights_to_bytes({**REF, "extra": torch.zeros(1)}), "extra"),
        (weights_to_bytes({**REF, "linear.bias": torch.zeros(3)}), "expects"),
        (weights_to_bytes({**REF, "linear.bias": torch.zeros(2, dtype=torch.float64)}), "expects"),
        (weights_to_bytes({**REF, "linear.bias": torch.tensor([1.0, float("nan")])}), "NaN"),
    ],
)
def test_hostile_payloads_are_refused(payload: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        weights_from_bytes(payload, reference=REF)


def test_size_limit() -> None:
    with pytest.raises(ProtocolError, match="limit"):
        weights_from_bytes(weights_to_bytes(REF), max_bytes=10)
