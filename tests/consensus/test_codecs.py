"""Update codecs: round trips within their stated error, sizes as claimed, error feedback,
every malformed encoding refused with a specific ProtocolError, and decoding + FedAvg
bit-identical across processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pydantic import ValidationError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from consensus.codecs.feedback import ErrorFeedback
from consensus.codecs.fp16 import Fp16
from consensus.codecs.int8 import Int8
from consensus.codecs.none import NoCodec
from consensus.codecs.pipeline import METADATA_KEY, UpdateEncoding, build_encoding
from consensus.codecs.registry import CODECS, build_codec
from consensus.codecs.topk import TopK
from consensus.serialization import weights_to_bytes
from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError, ProtocolError

ROOT = Path(__file__).resolve().parents[2]

changes = arrays(
    np.float32,
    st.integers(1, 64),
    elements=st.floats(-1e3, 1e3, width=32, allow_subnormal=False),
)


def _roundtrip(codec: object, change: torch.Tensor) -> torch.Tensor:
    assert isinstance(codec, (NoCodec, Fp16, Int8, TopK))
    return codec.decode(codec.encode(change), change.shape, "t")


@settings(max_examples=60, deadline=None)
@given(changes)
def test_none_is_exact(x: np.ndarray) -> None:
    c = torch.from_numpy(x)
    assert torch.equal(_roundtrip(NoCodec(), c), c)


@settings(max_examples=60, deadline=None)
@given(changes)
def test_fp16_within_its_bound(x: np.ndarray) -> None:
    c = torch.from_numpy(x)
    err = (_roundtrip(Fp16(), c) - c).abs()
    assert bool((err <= c.abs() * 2**-11 + 2**-25).all())


@settings(max_examples=60, deadline=None)
@given(changes)
def test_int8_within_its_bound(x: np.ndarray) -> None:
    c = torch.from_numpy(x)
    bound = float(c.abs().max()) / 254
    err = (_roundtrip(Int8(), c) - c).abs()
    assert bool((err <= bound * (1 + 1e-5) + 1e-30).all())


@settings(max_examples=60, deadline=None)
@given(changes, st.sampled_from([0.01, 0.1, 0.5, 1.0]))
def test_topk_keeps_exactly_the_largest(x: np.ndarray, fraction: float) -> None:
    c = torch.from_numpy(x)
    codec = TopK(fraction=fraction)
    got = _roundtrip(codec, c)
    kept = got != 0
    assert torch.equal(got[kept], c[kept])  # kept entries are exact
    k = codec.kept(c.numel())
    assert int(codec.encode(c)["indices"].numel()) == k
    smallest_kept = float(c.abs()[codec.encode(c)["indices"].long()].min())
    assert float((c - got).abs().max()) <= smallest_kept  # dropped ones are no larger


def test_every_registered_codec_round_trips_through_the_wire_format() -> None:
    gen = torch.Generator().manual_seed(0)
    reference = {
        "w": torch.zeros(8, 5),
        "b": torch.zeros(5),
        "steps": torch.zeros((), dtype=torch.int64),
    }
    previous = {"w": torch.randn(8, 5, generator=gen), "b": torch.randn(5, generator=gen),
                "steps": torch.tensor(3)}  # fmt: skip
    weights = {k: v + 0.1 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v + 1
               for k, v in previous.items()}  # fmt: skip
    bounds = {"none": 0.0, "fp16": 2**-11 * 0.5, "int8": 0.5 / 254, "topk": 0.5}
    for name in CODECS:
        params = {"fraction": 0.5} if name == "topk" else {}
        enc = build_encoding(name, params)
        data = enc.encode(weights, previous)
        assert len(data) <= enc.max_bytes(reference)
        back = enc.decode(data, previous, reference)
        assert set(back) == set(reference)
        assert torch.equal(back["steps"], weights["steps"])
        for k in ("w", "b"):
            assert back[k].dtype == torch.float32 and back[k].shape == reference[k].shape
            err = float((back[k] - weights[k]).abs().max())
            assert err <= bounds[name] + 1e-5, (name, k, err)
    assert set(CODECS) == {"none", "fp16", "int8", "topk"}


def _big() -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    ref = {"w": torch.zeros(400, 250), "b": torch.zeros(250)}
    prev = {k: torch.randn(v.shape, generator=gen) for k, v in ref.items()}
    new = {k: v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in prev.items()}
    return ref, prev, new


def test_sizes_are_what_the_codecs_claim() -> None:
    ref, prev, new = _big()
    numel = sum(v.numel() for v in ref.values())
    plain = len(build_encoding().encode(new, prev))
    assert plain == len(weights_to_bytes(new))
    sizes = {
        name: len(build_encoding(name, p).encode(new, prev))
        for name, p in (("fp16", {}), ("int8", {}), ("topk", {"fraction": 0.01}))
    }
    assert 0.49 < sizes["fp16"] / plain < 0.51
    assert 0.24 < sizes["int8"] / plain < 0.26
    topk = TopK(fraction=0.01)
    kept = sum(topk.kept(v.numel()) for v in ref.values())
    assert kept == 1003  # 1000 of w, 3 (rounded) of b
    assert 8 * kept < sizes["topk"] < 8 * kept + 1024
    assert sizes["topk"] < plain / 45
    for name, p in (("fp16", {}), ("int8", {}), ("topk", {"fraction": 0.01})):
        assert sizes[name] <= build_encoding(name, p).max_bytes(ref)
    assert numel == 100_250


def test_error_feedback_makes_decoded_changes_add_up_to_the_true_ones() -> None:
    gen = torch.Generator().manual_seed(2)
    ref = {"w": torch.zeros(2000)}
    enc = build_encoding("topk", {"fraction": 0.05})
    with_fb, without = ErrorFeedback(), None
    prev = {"w": torch.zeros(2000)}
    true_sum = torch.zeros(2000)
    sums = {"feedback": torch.zeros(2000), "none": torch.zeros(2000)}
    drift = 0.02 * torch.randn(2000, generator=gen)  # a consistent direction plus noise
    for _ in range(30):
        change = drift + 0.01 * torch.randn(2000, generator=gen)
        new = {"w": prev["w"] + change}
        true_sum += new["w"] - prev["w"]
        for key, fb in (("feedback", with_fb), ("none", without)):
            got = enc.decode(enc.encode(new, prev, fb), prev, ref)
            sums[key] += got["w"] - prev["w"]
    gap_fb = float((sums["feedback"] - true_sum).norm() / true_sum.norm())
    gap_none = float((sums["none"] - true_sum).norm() / true_sum.norm())
    assert gap_fb < 0.35 < gap_none  # without feedback most of the change is lost for good
    # the gap is exactly what the sender still holds back (up to float32 rounding)
    held = with_fb.residual["w"]
    assert float((sums["feedback"] + held - true_sum).abs().max()) < 1e-4


# -- malformed encodings ------------------------------------------------------------------

REF = {"w": torch.zeros(10), "b": torch.zeros(2)}
PREV = {"w": torch.linspace(-1, 1, 10), "b": torch.tensor([0.5, -0.5])}
NEW = {"w": PREV["w"] + torch.linspace(0, 0.9, 10), "b": PREV["b"] + torch.tensor([0.2, 0.0])}
TOPK = build_encoding("topk", {"fraction": 0.3})
INT8 = build_encoding("int8")


def _tampered(enc: UpdateEncoding, change: Callable[[dict[str, torch.Tensor]], None]) -> bytes:
    stored = st_load(enc.encode(NEW, PREV))
    change(stored)
    return st_save(stored, metadata=enc.metadata())


def _set(name: str, value: torch.Tensor) -> Callable[[dict[str, torch.Tensor]], None]:
    return lambda stored: stored.__setitem__(name, value)


def _meta(text: str) -> bytes:
    return st_save(st_load(TOPK.encode(NEW, PREV)), metadata={METADATA_KEY: text})


MALFORMED: list[tuple[str, UpdateEncoding, Callable[[], bytes], str]] = [
    ("truncated", TOPK, lambda: TOPK.encode(NEW, PREV)[:-7], "not a valid safetensors"),
    ("truncated header", TOPK, lambda: TOPK.encode(NEW, PREV)[:40], "truncated"),
    ("no header", TOPK, lambda: b"\x01", "truncated"),
    ("plain for topk", TOPK, lambda: weights_to_bytes(NEW), "encoded as the plain model"),
    ("topk for plain", build_encoding(), lambda: TOPK.encode(NEW, PREV), "agreed none"),
    ("other fraction", TOPK,
     lambda: build_encoding("topk", {"fraction": 0.5}).encode(NEW, PREV), "0.5"),
    ("other codec", TOPK, lambda: INT8.encode(NEW, PREV), '"int8"'),
    ("bad metadata", TOPK, lambda: _meta("{not json"), "encoded as {not json"),
    ("index out of range", TOPK, lambda: _tampered(
        TOPK, _set("w:indices", torch.tensor([3, 8, 10], dtype=torch.int32))),
     "'w': top-k index 10 is out of range [0, 10)"),
    ("negative index", TOPK, lambda: _tampered(
        TOPK, _set("w:indices", torch.tensor([-1, 8, 9], dtype=torch.int32))),
     "'w': top-k index -1 is out of range"),
    ("duplicate index", TOPK, lambda: _tampered(
        TOPK, _set("w:indices", torch.tensor([7, 7, 9], dtype=torch.int32))),
     "'w': top-k indices hold a duplicate"),
    ("unsorted indices", TOPK, lambda: _tampered(
        TOPK, _set("w:indices", torch.tensor([9, 7, 8], dtype=torch.int32))),
     "'w': top-k indices are not in ascending order"),
    ("too many entries", TOPK, lambda: _tampered(TOPK, lambda s: s.update({
        "w:indices": torch.arange(4, dtype=torch.int32), "w:values": torch.ones(4)})),
     "'w': 4 top-k entries, more than the 3 allowed"),
    ("count mismatch", TOPK, lambda: _tampered(TOPK, _set("w:values", torch.ones(2))),
     "'w': 3 top-k indices but 2 values"),
    ("int64 indices", TOPK, lambda: _tampered(
        TOPK, _set("w:indices", torch.tensor([7, 8, 9]))), "'w': part 'indices' is torch.int64"),
    ("NaN value", TOPK, lambda: _tampered(
        TOPK, _set("w:values", torch.tensor([1.0, float("nan"), 1.0]))),
     "'w': part 'values' holds NaN"),
    ("missing part", TOPK, lambda: _tampered(TOPK, lambda s: s.pop("b:values")),
     "missing ['b:values']"),
    ("NaN scale", INT8, lambda: _tampered(INT8, _set("w:scale", torch.tensor([float("nan")]))),
     "'w': part 'scale' holds NaN"),
    ("negative scale", INT8, lambda: _tampered(INT8, _set("w:scale", torch.tensor([-1.0]))),
     "'w': int8 scale -1 is negative"),
    ("overflowing scale", INT8, lambda: _tampered(INT8, _set("w:scale", torch.tensor([3e38]))),
     "'w': int8 scale 3e+38 overflows"),
    ("q of -128", INT8, lambda: _tampered(
        INT8, _set("b:q", torch.tensor([-128, 0], dtype=torch.int8))), "'b': int8 value -128"),
    ("q of wrong shape", INT8, lambda: _tampered(
        INT8, _set("w:q", torch.zeros(11, dtype=torch.int8))), "'w': part 'q' has shape (11,)"),
    ("oversized", TOPK, lambda: TOPK.encode(NEW, PREV) + b" " * 70_000, "over the"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("enc", "make", "message"),
    [pytest.param(e, m, msg, id=case) for case, e, m, msg in MALFORMED],
)
def test_malformed_encodings_are_refused_naming_what_is_wrong(
    enc: UpdateEncoding, make: Callable[[], bytes], message: str
) -> None:
    with pytest.raises(ProtocolError) as caught:
        enc.decode(make(), PREV, REF)
    assert message in str(caught.value)


def test_the_unmodified_encodings_decode() -> None:
    for enc in (TOPK, INT8):
        back = enc.decode(enc.encode(NEW, PREV), PREV, REF)
        assert set(back) == {"w", "b"}


# -- task spec --------------------------------------------------------------------------

SPEC = {
    "name": "t",
    "task": "heart",
    "model": {"arch": "logreg"},
    "training": {"epochs": 1, "lr": 0.1, "batch_size": 4},
}


def test_task_spec_encoding_defaults_to_none_and_takes_a_bare_name() -> None:
    assert TaskSpec.model_validate(SPEC).encoding.codec == "none"
    assert TaskSpec.model_validate({**SPEC, "encoding": "int8"}).encoding.codec == "int8"
    spec = TaskSpec.model_validate(
        {**SPEC, "encoding": {"codec": "topk", "params": {"fraction": 0.01}}}
    )
    assert TaskSpec.from_bytes(spec.to_bytes()) == spec
    assert json.loads(spec.to_bytes())["encoding"] == {
        "codec": "topk",
        "params": {"fraction": 0.01},
    }


@pytest.mark.parametrize(
    ("encoding", "message"),
    [
        ("zip", "unknown encoding codec 'zip'; registered codecs: fp16, int8, none, topk"),
        ({"codec": "topk", "params": {"fraction": 0}}, "topk fraction must be in (0, 1]"),
        ({"codec": "topk"}, "encoding codec 'topk': bad parameters"),
        ({"codec": "int8", "params": {"bits": 4}}, "encoding codec 'int8': bad parameters"),
    ],
)
def test_task_spec_refuses_unknown_codecs_and_bad_params(encoding: object, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        TaskSpec.model_validate({**SPEC, "encoding": encoding})
    assert message in str(caught.value)
    with pytest.raises(ConfigError, match="registered codecs"):
        build_codec("zip")


# -- determinism across processes ---------------------------------------------------------

_DECODE_AND_AGGREGATE = """
import hashlib, sys
from pathlib import Path
from safetensors.torch import load
from consensus.codecs.pipeline import build_encoding
from consensus.serialization import weights_to_bytes
from consensus.strategies.abc import RoundContext, Update
from consensus.strategies.registry import build_rule
from consensus.task_spec import AggregationSpec
folder = Path(sys.argv[1])
previous = load((folder / "previous").read_bytes())
reference = {k: v.clone() for k, v in previous.items()}
rule = build_rule(AggregationSpec(rule="fedavg"))
out = []
for codec, params in (("fp16", {}), ("int8", {}), ("topk", {"fraction": 0.1})):
    enc = build_encoding(codec, params)
    ups = [Update(str(i), enc.decode((folder / f"{codec}{i}").read_bytes(), previous, reference),
                  10 + 7 * i) for i in range(5)]
    agg = rule.aggregate(ups, RoundContext(1, previous, 0))
    out.append(hashlib.sha256(weights_to_bytes(agg.weights)).hexdigest())
print(",".join(out))
"""


def test_decoding_then_fedavg_is_bit_identical_in_two_processes(tmp_path: Path) -> None:
    gen = torch.Generator().manual_seed(3)
    previous = {"w": torch.randn(64, 33, generator=gen), "b": torch.randn(33, generator=gen)}
    (tmp_path / "previous").write_bytes(weights_to_bytes(previous))
    for codec, params in (("fp16", {}), ("int8", {}), ("topk", {"fraction": 0.1})):
        enc = build_encoding(codec, params)
        for i in range(5):
            new = {k: v + 0.05 * torch.randn(v.shape, generator=gen) for k, v in previous.items()}
            (tmp_path / f"{codec}{i}").write_bytes(enc.encode(new, previous))
    digests = []
    for threads in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", _DECODE_AND_AGGREGATE, str(tmp_path)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": threads},
        )
        digests.append(done.stdout.strip())
    assert digests[0] == digests[1]
    assert len(set(digests[0].split(","))) == 3
    assert all(len(d) == len(hashlib.sha256().hexdigest()) for d in digests[0].split(","))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["topk", "int8", "fp16"]),
    st.integers(0, 10_000),
    st.integers(1, 255),
    st.integers(0, 200),
)
def test_any_corrupted_encoding_is_decoded_or_refused_never_a_crash(
    codec: str, where: int, xor: int, cut: int
) -> None:
    enc = {"topk": TOPK, "int8": INT8, "fp16": build_encoding("fp16")}[codec]
    data = bytearray(enc.encode(NEW, PREV))
    data[where % len(data)] ^= xor
    try:
        back = enc.decode(bytes(data[: len(data) - cut]), PREV, REF)
    except ProtocolError:
        return
    assert set(back) == set(REF)
    assert all(bool(torch.isfinite(v).all()) for v in back.values())
