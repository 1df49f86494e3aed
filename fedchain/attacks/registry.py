"""Attack names -> attacks: the built-ins plus plug-ins from the ``fedchain.attacks`` group.

A plug-in entry point names an :class:`~fedchain.attacks.abc.Attack` subclass whose ``name``
equals the entry point's name; :func:`get_attack` constructs it with the given parameters.
A plug-in never replaces a built-in, and a broken one gives one ConfigError line naming its
entry point (see :mod:`fedchain.plugins`).
"""

from __future__ import annotations

import inspect
from importlib.metadata import EntryPoint
from typing import Any

from fedchain.attacks.abc import Attack
from fedchain.attacks.collude import Collude
from fedchain.attacks.label_flip import LabelFlip
from fedchain.attacks.updates import FreeRide, GaussianNoise, Scaling, SignFlip
from fedchain.errors import ConfigError
from fedchain.plugins import (
    load_entry_point,
    plugin_entry_points,
    plugin_label,
    require_plugin_name,
)

ENTRY_POINT_GROUP = "fedchain.attacks"

BUILTIN_ATTACKS: dict[str, type[Attack]] = {
    cls.name: cls for cls in (SignFlip, Scaling, GaussianNoise, LabelFlip, FreeRide, Collude)
}


def _plugins() -> dict[str, EntryPoint]:
    return plugin_entry_points(ENTRY_POINT_GROUP, BUILTIN_ATTACKS)


def attack_names() -> tuple[str, ...]:
    """Names of the built-in and installed attacks, sorted (plug-ins are not imported)."""
    return tuple(sorted({*BUILTIN_ATTACKS, *_plugins()}))


def _load_plugin(ep: EntryPoint) -> type[Attack]:
    obj = load_entry_point("attack", ep)
    label = plugin_label("attack", ep)
    if not (isinstance(obj, type) and issubclass(obj, Attack)):
        raise ConfigError(
            f"{label} resolves to {type(obj).__name__}, not a fedchain.attacks.Attack subclass; "
            "fix the entry point"
        )
    require_plugin_name("attack", ep, obj)
    return obj


def attack_class(name: str) -> type[Attack]:
    """The class of attack ``name``; ConfigError listing the known ones if there is none."""
    cls = BUILTIN_ATTACKS.get(name)
    if cls is not None:
        return cls
    plugin = _plugins().get(name)
    if plugin is None:
        raise ConfigError(
            f"unknown attack {name!r}; known attacks: {', '.join(attack_names())} (plug-ins "
            f"come from the entry-point group {ENTRY_POINT_GROUP!r})"
        )
    return _load_plugin(plugin)


def get_attack(name: str, **params: Any) -> Attack:
    """Attack ``name`` with ``params``; ConfigError naming an unknown or bad parameter."""
    cls = attack_class(name)
    accepted = [
        p.name
        for p in inspect.signature(cls.__init__).parameters.values()
        if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    takes_any = any(
        p.kind is p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values()
    )
    for key in params:
        if key not in accepted and not takes_any:
            raise ConfigError(
                f"attack {name!r} has no parameter {key!r}; its parameters: "
                f"{', '.join(accepted) or '(none)'}"
            )
    try:
        return cls(**params)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"attack {name!r}: bad parameters {sorted(params)}: {exc}") from None
