"""The ``deflate`` byte stage: lossless compression of an encoded update, decoded within bounds.

Quantized changes (``int8``) cluster near zero, so their bytes compress further; the stage runs
after the codec, on the whole encoded safetensors file, and the result travels as one
``payload`` (uint8) tensor in an envelope whose metadata names every stage. zlib (the standard
library's binding of the reference deflate implementation) does the work: it is everywhere, its
format is fixed by RFC 1951/1950, and decompression is bounded by asking for at most the
largest plain encoding plus one byte, so a decompression bomb costs its sender nothing but the
update.
"""

from __future__ import annotations

import zlib
from typing import Any

from fedchain.errors import ProtocolError

NAME = "deflate"
LEVEL = 9
"""Compression level: updates are compressed once and fetched by every member."""


def describe() -> dict[str, Any]:
    """The stage as the encoding metadata names it."""
    return {"name": NAME, "params": {"level": LEVEL}}


def compress(data: bytes) -> bytes:
    return zlib.compress(data, LEVEL)


def max_compressed_bytes(plain_limit: int) -> int:
    """The most bytes deflate can turn ``plain_limit`` bytes into (stored blocks: 5 bytes per
    16 KiB block, plus the zlib header and checksum)."""
    return plain_limit + 5 * (plain_limit // 16383 + 1) + 16


def decompress(payload: bytes, *, limit: int) -> bytes:
    """The bytes ``payload`` deflates from, at most ``limit``; ProtocolError when it is not one
    complete zlib stream or would inflate beyond ``limit``."""
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(payload, limit + 1)
    except zlib.error as exc:
        raise ProtocolError(f"update payload is not valid deflate data: {exc}") from None
    if len(plain) > limit or inflater.unconsumed_tail:
        raise ProtocolError(
            f"update payload inflates beyond the {limit}-byte limit of its encoding"
        )
    if not inflater.eof:
        raise ProtocolError("update payload is a truncated deflate stream")
    if inflater.unused_data:
        raise ProtocolError(
            f"update payload has {len(inflater.unused_data)} bytes after its deflate stream"
        )
    return plain
