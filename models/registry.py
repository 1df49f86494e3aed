"""Build a model from its architecture name, as written in a task spec.

Peers exchange only state dicts of float32 tensors, so the architecture travels as a name plus
keyword arguments; every peer rebuilds the same module from them and loads the tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

from fedchain.errors import ConfigError
from models.nets.fusion import AttentionFusion, UnimodalClassifier
from models.nets.logreg import LogisticRegression


def _mlp(in_features: int, num_classes: int = 2, **kwargs: Any) -> nn.Module:
    return UnimodalClassifier("tabular", num_classes, in_features=in_features, **kwargs)


def _signal(backbone: str) -> Callable[..., nn.Module]:
    def build(in_channels: int, num_classes: int, **kwargs: Any) -> nn.Module:
        return UnimodalClassifier(
            "signal", num_classes, in_channels=in_channels, backbone=backbone, **kwargs
        )

    return build


def _image_cnn(num_classes: int = 2, in_channels: int = 1, **kwargs: Any) -> nn.Module:
    return UnimodalClassifier("image", num_classes, in_channels=in_channels, **kwargs)


_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "logreg": LogisticRegression,
    "mlp": _mlp,
    "signal_cnn": _signal("cnn"),
    "signal_gru": _signal("gru"),
    "image_cnn": _image_cnn,
    "fusion": AttentionFusion,
}


def known_archs() -> tuple[str, ...]:
    """Architecture names ``build_model`` accepts, sorted."""
    return tuple(sorted(_FACTORIES))


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (seed torch first for fixed weights).

    Every model returns logits ``[n, num_classes]`` (two logits for binary tasks).

    * ``logreg``: ``in_features``, ``num_classes=2``.
    * ``mlp``: ``in_features``, ``num_classes=2``, ``embed_dim``, ``hidden``, ``dropout``.
    * ``signal_cnn`` / ``signal_gru``: ``in_channels``, ``num_classes``, ``embed_dim``, ``width``
      — input ``[n, channels, time]``.
    * ``image_cnn``: ``num_classes=2``, ``in_channels=1``, ``embed_dim``, ``width`` — input
      ``[n, channels, h, w]``.
    * ``fusion``: ``modalities`` ({name: {"kind": "tabular"|"signal"|"image", **encoder
      kwargs}}), ``num_classes``, ``embed_dim``, ``modality_dropout`` — input {name: tensor}.
    """
    factory = _FACTORIES.get(arch)
    if factory is None:
        raise ConfigError(f"unknown model architecture {arch!r}; known: {', '.join(known_archs())}")
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(
            f"bad arguments {sorted(kwargs)} for architecture {arch!r}: {exc}"
        ) from exc


def build_model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Build from a task-spec mapping ``{"arch": name, "kwargs": {...}}``."""
    if "arch" not in spec:
        raise ConfigError(f"model spec {dict(spec)!r} lacks the key 'arch'")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"model spec 'kwargs' must be a mapping, got {type(kwargs).__name__}")
    return build_model(str(spec["arch"]), **dict(kwargs))


def init_model(spec: Mapping[str, Any], seed: int) -> nn.Module:
    """Build from a spec with weights drawn from ``seed`` (caller's torch RNG left untouched)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build_model_from_spec(spec)
