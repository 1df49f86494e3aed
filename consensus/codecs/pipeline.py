"""The wire format of an update and its bounded decoder.

An update is a safetensors file.  With the ``none`` encoding it is the plain model (the
trained weights, ``consensus.serialization.weights_to_bytes``), exactly as before encodings
existed: the CIDs of such federations, and the chain-only free-rider rule (an update equal to
the global model has its digest), are unchanged.  With any other encoding it is
self-describing: its ``__metadata__`` holds one key, ``fedchain.encoding``, the canonical JSON

    {"base": "change", "stages": [{"name": "topk", "params": {"fraction": 0.01}}],
     "version": 1}

and its tensors are, for each float32 tensor ``k`` of the model, the codec's parts of the
change ``k``'s trained value minus the global model's (``k:indices``, ``k:values``; ``k:q``,
``k:scale``; ``k:half``); a tensor of another dtype (an integer buffer) travels whole as ``k``.
``stages`` is ordered, first applied first: the codec, a tensor stage, then optionally the
``deflate`` byte stage (:mod:`consensus.codecs.deflate`), which compresses the codec's whole
safetensors file (stored without metadata) into one ``payload`` (uint8) tensor of an envelope
whose metadata names every stage, so the format keeps its shape. (Members-only encryption is
not a stage: it seals whatever bytes this module makes, see ``peer/confidential``.)

A receiver accepts only the encoding its task spec agreed: metadata that differs, or is
missing, is refused.  Decoding is bounded before anything is parsed: :meth:`max_bytes` follows
from the model's reference shapes and the codec (the fetcher refuses larger content before
downloading it), every part's dtype and shape is checked, indices are checked for range, order,
duplicates and count, values for finiteness.  Any violation is a ProtocolError naming the
tensor and what is wrong; the node leaves that update out with the reason.

Decoding is deterministic on CPU in float32: the codec's decode uses only exact operations
(casts, a scatter into zeros, one IEEE multiply per entry for int8), and the model is then
``previous + change``, one IEEE float32 addition per entry, with no reduction whose order could
vary; every process therefore gets the same bits, and so does the aggregate computed from them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from consensus.codecs import deflate
from consensus.codecs.abc import Codec
from consensus.codecs.feedback import ErrorFeedback
from consensus.codecs.none import NoCodec
from consensus.codecs.registry import build_codec
from consensus.serialization import (
    HEADER_SLACK_BYTES,
    MAX_MODEL_BYTES,
    model_bytes_limit,
    weights_from_bytes,
    weights_to_bytes,
)
from fedchain.errors import ConfigError, ProtocolError

StateDict = dict[str, torch.Tensor]

FORMAT_VERSION = 1
METADATA_KEY = "fedchain.encoding"
PART_SEPARATOR = ":"
HEADER_BYTES_PER_TENSOR = 160
"""Room in the safetensors header for one stored tensor's entry, besides its name and shape."""
PAYLOAD = "payload"
"""The one tensor of a byte stage's envelope."""
COMPRESSIONS = ("none", deflate.NAME)
"""What a task spec's ``encoding.compress`` may name."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def read_metadata(data: bytes, *, max_header: int) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file, read from its header alone (bounded)."""
    if len(data) < 8:
        raise ProtocolError(
            f"not a valid safetensors update: {len(data)} bytes, truncated before the header"
        )
    (size,) = struct.unpack("<Q", data[:8])
    if size > len(data) - 8:
        raise ProtocolError(
            f"not a valid safetensors update: truncated, its header claims {size} bytes and "
            f"{len(data) - 8} follow"
        )
    if size > max_header:
        raise ProtocolError(f"update header of {size} bytes is over the {max_header}-byte limit")
    try:
        header = json.loads(data[8 : 8 + size])
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProtocolError("not a valid safetensors update: its header is not JSON") from None
    if not isinstance(header, dict):
        raise ProtocolError("not a valid safetensors update: its header is not a JSON object")
    meta = header.get("__metadata__") or {}
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ProtocolError("update metadata is not a map of strings")
    return meta


def _describe_metadata(meta: Mapping[str, str]) -> str:
    text = meta.get(METADATA_KEY)
    return "the plain model (no encoding)" if text is None else text


class UpdateEncoding:
    """The agreed encoding of a task's updates: encode (sender) and decode (every receiver)."""

    def __init__(self, codec: Codec, compress: str = "none") -> None:
        if compress not in COMPRESSIONS:
            raise ConfigError(f"unknown compression {compress!r}; choose one of {COMPRESSIONS}")
        if compress != "none" and isinstance(codec, NoCodec):
            raise ConfigError(
                f"compression {compress!r} works on an encoded change: choose a codec such as "
                "int8 with it, or no compression"
            )
        self.codec = codec
        self.compress = compress

    @property
    def compressed(self) -> bool:
        return self.compress != "none"

    @property
    def plain(self) -> bool:
        """True for ``none``: updates are the plain trained weights."""
        return isinstance(self.codec, NoCodec)

    def describe(self) -> dict[str, Any]:
        stages = [self.codec.describe(), *([deflate.describe()] if self.compressed else [])]
        return {"base": "change", "stages": stages, "version": FORMAT_VERSION}

    def metadata(self) -> dict[str, str]:
        return {METADATA_KEY: _canonical(self.describe())}

    def __str__(self) -> str:
        return "none" if self.plain else _canonical(self.describe())

    # -- sender -------------------------------------------------------------------------

    def encode(
        self,
        weights: Mapping[str, torch.Tensor],
        previous: Mapping[str, torch.Tensor],
        feedback: ErrorFeedback | None = None,
    ) -> bytes:
        """The bytes of the update ``weights`` trained from ``previous``.

        With ``feedback`` and a codec that asks for it, the residual is added to the change
        before encoding and the new residual kept there.
        """
        if self.plain:
            return weights_to_bytes(weights)
        changes = {
            k: weights[k].detach().to(torch.float32) - previous[k]
            for k in weights
            if weights[k].dtype == torch.float32
        }
        use_feedback = feedback is not None and self.codec.error_feedback
        if feedback is not None and use_feedback:
            changes = feedback.corrected(changes)
        stored: StateDict = {}
        sent: StateDict = {}
        for name in sorted(weights):
            if name not in changes:
                stored[name] = weights[name].detach().contiguous()
                continue
            parts = self.codec.encode(changes[name])
            for part, tensor in parts.items():
                stored[name + PART_SEPARATOR + part] = tensor
            if use_feedback:
                sent[name] = self.codec.decode(parts, changes[name].shape, name)
        if feedback is not None and use_feedback:
            feedback.keep(changes, sent)
        if not self.compressed:
            return st_save(stored, metadata=self.metadata())
        payload = deflate.compress(st_save(stored))
        envelope = {PAYLOAD: torch.frombuffer(bytearray(payload), dtype=torch.uint8)}
        return st_save(envelope, metadata=self.metadata())

    # -- receiver -----------------------------------------------------------------------

    def max_bytes(self, reference: Mapping[str, torch.Tensor]) -> int:
        """The largest update a model of ``reference``'s shapes can have in this encoding."""
        if self.plain:
            return model_bytes_limit(reference)
        inner = self._codec_max_bytes(reference)
        if not self.compressed:
            return inner
        envelope = 8 + HEADER_SLACK_BYTES + HEADER_BYTES_PER_TENSOR + len(PAYLOAD) + 24
        return min(envelope + deflate.max_compressed_bytes(inner), MAX_MODEL_BYTES)

    def _codec_max_bytes(self, reference: Mapping[str, torch.Tensor]) -> int:
        """The largest file the codec stage alone makes for ``reference``'s shapes."""
        total = 8 + HEADER_SLACK_BYTES
        for name, ref in reference.items():
            if ref.dtype != torch.float32:
                total += ref.numel() * ref.element_size()
                total += HEADER_BYTES_PER_TENSOR + len(name.encode()) + 24 * ref.dim()
                continue
            total += self.codec.max_part_bytes(ref.numel())
            for part in self.codec.parts():
                total += HEADER_BYTES_PER_TENSOR + len(name.encode()) + len(part) + 24 * ref.dim()
        return min(total, MAX_MODEL_BYTES)

    def _header_limit(self, reference: Mapping[str, torch.Tensor]) -> int:
        """The largest header (JSON) an update of this model may have: read before parsing."""
        tensors = len(reference) * max(1, len(self.codec.parts()))
        names = sum(len(k.encode()) + 24 * v.dim() + 16 for k, v in reference.items())
        return HEADER_SLACK_BYTES + tensors * HEADER_BYTES_PER_TENSOR + names * 2

    def decode(
        self,
        data: bytes,
        previous: Mapping[str, torch.Tensor] | None,
        reference: Mapping[str, torch.Tensor],
    ) -> StateDict:
        """The model an untrusted update stands for; ProtocolError naming what is wrong.

        ``previous`` (the round's global model) is needed by every encoding but ``none``.
        """
        limit = self.max_bytes(reference)
        if len(data) > limit:
            raise ProtocolError(
                f"update is {len(data)} bytes, over the {limit}-byte limit of encoding {self}"
            )
        meta = read_metadata(data, max_header=self._header_limit(reference))
        if meta != ({} if self.plain else self.metadata()):
            raise ProtocolError(
                f"update is encoded as {_describe_metadata(meta)}, but the task spec agreed {self}"
            )
        if self.plain:
            return weights_from_bytes(data, reference=reference, max_bytes=limit)
        if previous is None:
            raise ValueError("decoding an encoded update needs the round's global model")
        if self.compressed:
            data = self._inflate(data, reference)
        stored = _load(data)
        self._check_names(stored, reference)
        out: StateDict = {}
        for name, ref in reference.items():
            if ref.dtype != torch.float32:
                out[name] = self._whole(stored[name], ref, name)
                continue
            parts = {p: stored[name + PART_SEPARATOR + p] for p in self.codec.parts()}
            change = self.codec.decode(parts, ref.shape, name)
            if tuple(change.shape) != tuple(ref.shape) or change.dtype != torch.float32:
                raise ProtocolError(f"tensor {name!r}: decoded change has the wrong shape")
            value = previous[name] + change
            if not bool(torch.isfinite(value).all()):
                raise ProtocolError(f"tensor {name!r}: the global model plus the change overflows")
            out[name] = value
        return out

    def _inflate(self, data: bytes, reference: Mapping[str, torch.Tensor]) -> bytes:
        """The codec's file inside a byte stage's envelope, bounded by the codec's limit."""
        envelope = _load(data)
        payload = envelope.get(PAYLOAD)
        if set(envelope) != {PAYLOAD} or payload is None or payload.dtype != torch.uint8:
            raise ProtocolError(
                f"update envelope must hold exactly one uint8 tensor {PAYLOAD!r}, "
                f"not {sorted(envelope)[:5]}"
            )
        inner = deflate.decompress(
            payload.numpy().tobytes(), limit=self._codec_max_bytes(reference)
        )
        if read_metadata(inner, max_header=self._header_limit(reference)):
            raise ProtocolError("the compressed update must not carry metadata of its own")
        return inner

    def _expected_names(self, reference: Mapping[str, torch.Tensor]) -> set[str]:
        names: set[str] = set()
        for name, ref in reference.items():
            if ref.dtype != torch.float32:
                names.add(name)
            else:
                names.update(name + PART_SEPARATOR + p for p in self.codec.parts())
        return names

    def _check_names(
        self, stored: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]
    ) -> None:
        expected = self._expected_names(reference)
        missing = sorted(expected - set(stored))
        extra = sorted(set(stored) - expected)
        if missing or extra:
            raise ProtocolError(
                f"update tensors differ from encoding {self.codec.name} of the model: "
                f"missing {missing[:5]}, unexpected {extra[:5]}"
            )

    @staticmethod
    def _whole(tensor: torch.Tensor, ref: torch.Tensor, name: str) -> torch.Tensor:
        if tensor.dtype != ref.dtype or tensor.shape != ref.shape:
            raise ProtocolError(
                f"tensor {name!r} is {tensor.dtype}{tuple(tensor.shape)}, "
                f"the model expects {ref.dtype}{tuple(ref.shape)}"
            )
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ProtocolError(f"tensor {name!r} holds NaN or infinite values")
        return tensor


def _load(data: bytes) -> StateDict:
    try:
        return st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ProtocolError(f"update is not a valid safetensors file: {exc}") from None


def build_encoding(
    codec: str = "none", params: dict[str, Any] | None = None, compress: str = "none"
) -> UpdateEncoding:
    """The encoding a task spec's ``encoding`` names; ConfigError for an unknown codec."""
    return UpdateEncoding(build_codec(codec, params), compress)
