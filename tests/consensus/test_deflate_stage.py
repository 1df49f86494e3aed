"""The ``deflate`` byte stage: lossless after the codec, smaller on quantized changes, and every
malformed or oversized envelope refused with a specific ProtocolError (never a crash)."""

from __future__ import annotations

import json
import zlib

import pytest
import torch
from pydantic import ValidationError
from safetensors.torch import save as st_save

from consensus.codecs.pipeline import METADATA_KEY, build_encoding
from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError, ProtocolError

SPEC = {
    "name": "t",
    "task": "heart",
    "model": {"arch": "logreg"},
    "training": {"epochs": 1, "lr": 0.1, "batch_size": 4},
}


def _model() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(3)
    ref = {
        "w": torch.zeros(300, 200),
        "b": torch.zeros(200),
        "n": torch.zeros((), dtype=torch.int64),
    }
    prev = {"w": torch.randn(300, 200, generator=gen), "b": torch.randn(200, generator=gen),
            "n": torch.tensor(4)}  # fmt: skip
    # Trained changes are heavy-tailed: most entries move little, a few move much.
    new = {k: v + 0.01 * torch.randn(v.shape, generator=gen) ** 3 if v.is_floating_point() else v
           for k, v in prev.items()}  # fmt: skip
    return ref, prev, new


def test_deflate_decodes_to_the_very_bits_of_its_codec_and_is_smaller() -> None:
    ref, prev, new = _model()
    int8 = build_encoding("int8")
    packed = build_encoding("int8", compress="deflate")
    plain_bytes, packed_bytes = int8.encode(new, prev), packed.encode(new, prev)
    assert len(packed_bytes) < 0.8 * len(plain_bytes)
    assert len(packed_bytes) <= packed.max_bytes(ref)
    a, b = int8.decode(plain_bytes, prev, ref), packed.decode(packed_bytes, prev, ref)
    assert all(a[k].numpy().tobytes() == b[k].numpy().tobytes() for k in ref)
    stages = json.loads(packed.metadata()[METADATA_KEY])["stages"]
    assert [s["name"] for s in stages] == ["int8", "deflate"]
    with pytest.raises(ProtocolError, match="task spec agreed"):  # the stage is agreed, too
        int8.decode(packed_bytes, prev, ref)
    with pytest.raises(ProtocolError, match="task spec agreed"):
        packed.decode(plain_bytes, prev, ref)


def _envelope(payload: bytes, **extra: torch.Tensor) -> bytes:
    enc = build_encoding("int8", compress="deflate")
    tensors = {"payload": torch.frombuffer(bytearray(payload), dtype=torch.uint8), **extra}
    return st_save(tensors, metadata=enc.metadata())


def test_bombs_truncations_and_odd_envelopes_are_refused_by_name() -> None:
    ref, prev, _ = _model()
    enc = build_encoding("int8", compress="deflate")
    inner_limit = build_encoding("int8").max_bytes(ref)
    bomb = zlib.compress(b"\0" * (inner_limit + 10), 9)  # tiny on the wire, huge inflated
    good = zlib.compress(st_save({"w:q": torch.zeros(3, dtype=torch.int8)}), 9)
    cases = {
        "inflates beyond": _envelope(bomb),
        "truncated deflate stream": _envelope(good[:-6]),
        "not valid deflate data": _envelope(b"\x78\x9c" + b"garbage!" * 4),
        "after its deflate stream": _envelope(good + b"tail"),
        "exactly one uint8 tensor": _envelope(good, other=torch.zeros(2, dtype=torch.uint8)),
        "must not carry metadata": _envelope(
            zlib.compress(st_save({"w:q": torch.zeros(3, dtype=torch.int8)}, metadata={"a": "b"}))
        ),
        "update tensors differ": _envelope(good),
    }
    for message, data in cases.items():
        with pytest.raises(ProtocolError, match=message):
            enc.decode(data, prev, ref)
    wrong_dtype = st_save({"payload": torch.zeros(4, dtype=torch.int16)}, metadata=enc.metadata())
    with pytest.raises(ProtocolError, match="exactly one uint8 tensor"):
        enc.decode(wrong_dtype, prev, ref)


def test_task_spec_takes_deflate_only_after_a_codec_and_keeps_old_cids() -> None:
    plain = TaskSpec.model_validate({**SPEC, "encoding": "int8"})
    assert "compress" not in json.loads(plain.to_bytes())["encoding"]  # old specs, same CID
    spec = TaskSpec.model_validate({**SPEC, "encoding": {"codec": "int8", "compress": "deflate"}})
    assert json.loads(spec.to_bytes())["encoding"]["compress"] == "deflate"
    assert TaskSpec.from_bytes(spec.to_bytes()) == spec
    assert spec.encoding.build().compressed
    with pytest.raises(ValidationError, match="choose a codec such as int8"):
        TaskSpec.model_validate({**SPEC, "encoding": {"codec": "none", "compress": "deflate"}})
    with pytest.raises(ValidationError, match="unknown compression 'zstd'"):
        TaskSpec.model_validate({**SPEC, "encoding": {"codec": "int8", "compress": "zstd"}})
    with pytest.raises(ConfigError):
        build_encoding("fp16", compress="gzip")
