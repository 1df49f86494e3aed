"""The reveals an aggregate records (consensus.secagg.wire) and the header they ride in."""

from __future__ import annotations

import pytest
import torch

from consensus.secagg.rounds import Reveal
from consensus.secagg.wire import (
    MAX_ROUND_REVEALS_BYTES,
    round_reveals_from_text,
    round_reveals_to_text,
)
from consensus.serialization import bundle_from_bytes, bundle_to_bytes, header_notes
from fedchain.errors import ProtocolError

A, B, C, D = (f"0x{k:040x}" for k in (10, 11, 12, 13))
REVEALS = [Reveal(s, D, bytes([i]) * 32) for i, s in enumerate((A, B, C))]


def test_the_record_is_canonical_and_reads_back() -> None:
    text = round_reveals_to_text(7, 3, REVEALS)
    assert text == round_reveals_to_text(7, 3, list(reversed(REVEALS)))
    assert round_reveals_from_text(text, 7, 3) == REVEALS


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("{", "malformed"),
        ('{"a": 1}', "not a list"),
        ("[1]", "malformed reveal message"),
        ('[{"version": 1, "task": 7, "round": 4, "revealer": "x", "seeds": {}}]', "round 3"),
        ("[" + " " * MAX_ROUND_REVEALS_BYTES + "]", "exceed"),
    ],
)
def test_a_bad_record_is_refused(text: str, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        round_reveals_from_text(text, 7, 3)


def test_too_many_reveals_to_record_are_refused() -> None:
    many = [
        Reveal(f"0x{s:040x}", f"0x{d:040x}", b"\1" * 32) for s in range(40) for d in range(99, 111)
    ]
    with pytest.raises(ProtocolError, match="over the"):
        round_reveals_to_text(7, 3, many)


def test_a_note_rides_in_the_header_and_leaves_the_model_alone() -> None:
    weights = {"w": torch.arange(4.0)}
    plain = bundle_to_bytes(weights, {})
    noted = bundle_to_bytes(weights, {}, ("k", "v"))
    assert header_notes(plain) == {} and header_notes(noted) == {"k": "v"}
    assert plain == bundle_to_bytes(weights, {}, None)  # no note: the same bytes as ever
    got, _ = bundle_from_bytes(noted, reference=weights, state_reference={})
    assert torch.equal(got["w"], weights["w"])


@pytest.mark.parametrize("data", [b"", b"\xff" * 8 + b"{}", b"\x02" + b"\0" * 7 + b"[]"])
def test_a_broken_header_is_refused(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="safetensors"):
        header_notes(data)
