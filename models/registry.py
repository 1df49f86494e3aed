"""Build a model from its architecture name, as written in a task spec.

Peers exchange only state dicts of float32 tensors, so the architecture travels as a name plus
keyword arguments; every peer rebuilds the same module from them and loads the tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

from fedchain.errors import ConfigError
from models.nets.logreg import LogisticRegression

_FACTORIES: dict[str, Callable[..., nn.Module]] = {
    "logreg": LogisticRegression,
}


def known_archs() -> tuple[str, ...]:
    """Architecture names ``build_model`` accepts, sorted."""
    return tuple(sorted(_FACTORIES))


def build_model(arch: str, **kwargs: Any) -> nn.Module:
    """A freshly initialised model of architecture ``arch`` (seed torch first for fixed weights).

    ``logreg``: ``in_features``, ``num_classes=2`` — logits ``[n, num_classes]``.
    """
    factory = _FACTORIES.get(arch)
    if factory is None:
        raise ConfigError(f"unknown model architecture {arch!r}; known: {', '.join(known_archs())}")
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"bad arguments {sorted(kwargs)} for architecture {arch!r}: {exc}") from exc


def build_model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Build from a task-spec mapping ``{"arch": name, "kwargs": {...}}``."""
    if "arch" not in spec:
        raise ConfigError(f"model spec {dict(spec)!r} lacks the key 'arch'")
    kwargs = spec.get("kwargs", {})
    if not isinstance(kwargs, Mapping):
        raise ConfigError(f"model spec 'kwargs' must be a mapping, got {type(kwargs).__name__}")
    return build_model(str(spec["arch"]), **dict(kwargs))
