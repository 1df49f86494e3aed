"""Every update codec a task spec may name, and building one from its name and parameters."""

from __future__ import annotations

from typing import Any

from consensus.codecs.abc import Codec
from consensus.codecs.fp16 import Fp16
from consensus.codecs.int8 import Int8
from consensus.codecs.none import NoCodec
from consensus.codecs.topk import TopK
from fedchain.errors import ConfigError

CODECS: dict[str, type[Codec]] = {cls.name: cls for cls in (NoCodec, Fp16, Int8, TopK)}
"""Registered codecs by the name a task spec's ``encoding`` uses."""


def known_codecs() -> str:
    return ", ".join(sorted(CODECS))


def build_codec(name: str, params: dict[str, Any] | None = None) -> Codec:
    """The codec ``name`` with ``params``; ConfigError naming what is wrong."""
    try:
        cls = CODECS[name]
    except KeyError:
        raise ConfigError(
            f"unknown encoding codec {name!r}; registered codecs: {known_codecs()}"
        ) from None
    try:
        return cls(**(params or {}))
    except TypeError as exc:
        raise ConfigError(
            f"encoding codec {name!r}: bad parameters {sorted(params or {})}: {exc}"
        ) from None
