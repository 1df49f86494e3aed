"""Model weights <-> bytes, with safetensors only (never pickle).

Bytes from another peer are untrusted: they are parsed by safetensors (a plain
header plus raw buffers, no code execution), then checked against the shapes and
dtypes the task's model expects, and rejected if any value is not finite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from fedchain.errors import ProtocolError

MAX_MODEL_BYTES = 256 * 1024 * 1024


def weights_to_bytes(
    weights: Mapping[str, torch.Tensor], note: tuple[str, str] | None = None
) -> bytes:
    """Serialize a state dict canonically: same tensors -> same bytes -> same CID.

    ``note`` (name, text) goes in the header's ``__metadata__``; one entry at most, so its
    place in the header cannot vary.  Without it the bytes are those of the tensors alone."""
    ordered = {k: weights[k].detach().to("cpu").contiguous() for k in sorted(weights)}
    return st_save(ordered, metadata=None if note is None else {note[0]: note[1]})


def header_notes(data: bytes) -> dict[str, str]:
    """The text entries in untrusted safetensors bytes' ``__metadata__`` ({} when none).

    safetensors' own loaders drop them, so the header is read here, bounded by ``data``."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 <= size <= len(data) - 8:
        raise ProtocolError("not a valid safetensors model: its header length is out of range")
    try:
        header: Any = json.loads(data[8 : 8 + size])
        notes = header.get("__metadata__") or {}
    except (ValueError, AttributeError) as exc:
        raise ProtocolError(f"not a valid safetensors model: its header: {exc}") from None
    if not isinstance(notes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in notes.items()
    ):
        raise ProtocolError("not a valid safetensors model: its metadata is not text")
    return notes


HEADER_SLACK_BYTES = 64 * 1024
"""Room for the safetensors JSON header beyond the tensors' own bytes."""


def model_bytes_limit(reference: Mapping[str, torch.Tensor]) -> int:
    """Largest serialized size a model of ``reference``'s shapes and dtypes can have.

    Every exchanged model must have exactly the reference tensors, so its size is known
    before download: anything larger is refused without reading it.
    """
    tensors = sum(t.numel() * t.element_size() for t in reference.values())
    return min(tensors + HEADER_SLACK_BYTES, MAX_MODEL_BYTES)


def weights_from_bytes(
    data: bytes,
    *,
    reference: Mapping[str, torch.Tensor] | None = None,
    max_bytes: int = MAX_MODEL_BYTES,
) -> dict[str, torch.Tensor]:
    """Parse untrusted bytes into a state dict, checked against ``reference`` when given."""
    if len(data) > max_bytes:
        raise ProtocolError(f"model is {len(data)} bytes, over the {max_bytes}-byte limit")
    try:
        weights = st_load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ProtocolError(f"not a valid safetensors model: {exc}") from None
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ProtocolError(f"tensor {name!r} holds NaN or infinite values")
    if reference is not None:
        check_compatible(weights, reference)
    return weights


STATE_PREFIX = "rule_state/"
"""Names of the aggregation rule's agreed state inside an aggregate's content."""


def bundle_to_bytes(
    weights: Mapping[str, torch.Tensor],
    state: Mapping[str, torch.Tensor],
    note: tuple[str, str] | None = None,
) -> bytes:
    """An aggregate's content: the model and the rule's state (``rule_state/<name>``), so the
    state is attested with the aggregate under one digest and a restarted peer resumes it.

    ``note``: text the aggregate must commit to as well (secure aggregation's reveals), read
    back with :func:`header_notes`; loaders of the model ignore it."""
    return weights_to_bytes({**weights, **{STATE_PREFIX + k: v for k, v in state.items()}}, note)


def bundle_reference(
    reference: Mapping[str, torch.Tensor], state_reference: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """What a full bundle holds, to bound its size before download."""
    return {**reference, **{STATE_PREFIX + k: v for k, v in state_reference.items()}}


def bundle_from_bytes(
    data: bytes,
    *,
    reference: Mapping[str, torch.Tensor],
    state_reference: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Split untrusted content into (model, rule state), each checked against its reference.

    The state is all of ``state_reference`` or nothing (round 1's model, or a rule change).
    """
    limit = model_bytes_limit(bundle_reference(reference, state_reference))
    tensors = weights_from_bytes(data, max_bytes=limit)
    weights = {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}
    state = {k[len(STATE_PREFIX) :]: v for k, v in tensors.items() if k.startswith(STATE_PREFIX)}
    check_compatible(weights, reference)
    if state:
        check_compatible(state, state_reference)
    return weights, state


def agreed_model_from_bytes(
    data: bytes, *, reference: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The model in an aggregate's content, whatever rule state rides along (for evaluation)."""
    tensors = weights_from_bytes(data)
    weights = {k: v for k, v in tensors.items() if not k.startswith(STATE_PREFIX)}
    check_compatible(weights, reference)
    return weights


def check_compatible(
    weights: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]
) -> None:
    """Refuse a state dict whose names, shapes or dtypes differ from the task's model."""
    missing = sorted(set(reference) - set(weights))
    extra = sorted(set(weights) - set(reference))
    if missing or extra:
        raise ProtocolError(f"tensor names differ from the model: missing {missing}, extra {extra}")
    for name, ref in reference.items():
        got = weights[name]
        if got.shape != ref.shape or got.dtype != ref.dtype:
            raise ProtocolError(
                f"tensor {name!r} is {got.dtype}{tuple(got.shape)}, "
                f"the model expects {ref.dtype}{tuple(ref.shape)}"
            )
