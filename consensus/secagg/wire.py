"""What secure aggregation puts in the content store: masked updates and reveals, as bytes.

Both are read from untrusted peers, so both are plain formats parsed with exact size checks
(never pickle): a masked update is a fixed magic followed by its residues as little-endian
uint64, and its size is known before download (``8 * (parameters + 1)`` plus the magic); a
reveal is canonical JSON naming the round, the revealer and one 32-byte seed per missing member.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from consensus.secagg.fixed_point import Residues
from consensus.secagg.masks import SEED_BYTES
from consensus.secagg.rounds import Reveal
from fedchain.errors import ProtocolError

MASKED_MAGIC = b"FCSAGG01"
MAX_REVEAL_BYTES = 64 * 1024


def masked_size(parameters: int) -> int:
    """Bytes of a masked update of a model with ``parameters`` values (the weight appended)."""
    return len(MASKED_MAGIC) + 8 * (parameters + 1)


def masked_to_bytes(masked: Residues) -> bytes:
    return MASKED_MAGIC + masked.astype("<u8").tobytes()


def masked_from_bytes(data: bytes, parameters: int) -> Residues:
    """The residues of a masked update of ``parameters`` values; ProtocolError otherwise."""
    if not data.startswith(MASKED_MAGIC):
        raise ProtocolError("not a masked update (secure aggregation): wrong header")
    if len(data) != masked_size(parameters):
        raise ProtocolError(
            f"a masked update of this model has {masked_size(parameters)} bytes, got {len(data)}"
        )
    return np.frombuffer(data, dtype="<u8", offset=len(MASKED_MAGIC)).astype(np.uint64)


def reveals_to_bytes(
    task_id: int, round_no: int, revealer: str, reveals: Sequence[Reveal]
) -> bytes:
    """One submitter's reveals of a round (canonical JSON, so the same reveals, the same CID)."""
    if any(r.revealer.lower() != revealer.lower() for r in reveals):
        raise ValueError("every reveal in one message must be the revealer's own")
    body = {
        "version": 1,
        "task": task_id,
        "round": round_no,
        "revealer": revealer.lower(),
        "seeds": {r.dropped.lower(): r.seed.hex() for r in reveals},
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def reveals_from_bytes(data: bytes, task_id: int, round_no: int) -> list[Reveal]:
    """The reveals in ``data`` if it is a reveal message of this task and round."""
    if len(data) > MAX_REVEAL_BYTES:
        raise ProtocolError(f"a reveal message of {len(data)} bytes exceeds {MAX_REVEAL_BYTES}")
    try:
        body: Any = json.loads(data)
        header = (body["version"], body["task"], body["round"])
        revealer = str(body["revealer"])
        seeds = {str(d): bytes.fromhex(s) for d, s in dict(body["seeds"]).items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProtocolError(f"malformed reveal message: {exc}") from None
    if header != (1, task_id, round_no):
        raise ProtocolError(f"the reveal message is not for task {task_id} round {round_no}")
    if any(len(s) != SEED_BYTES for s in seeds.values()):
        raise ProtocolError(f"a revealed seed must have {SEED_BYTES} bytes")
    return [Reveal(revealer, d, s) for d, s in sorted(seeds.items())]


MAX_ROUND_REVEALS_BYTES = 48 * 1024
"""Most bytes of reveals one aggregate may record.  They ride in the aggregate's header, inside
the room every bundle fetch allows beyond the tensors (``HEADER_SLACK_BYTES``, 64 KiB), so the
next round's model stays fetchable: about 390 reveals (|S| x |D|, ~120 bytes each)."""


def round_reveals_to_text(task_id: int, round_no: int, reveals: Sequence[Reveal]) -> str:
    """Every reveal a round was unmasked with, as a JSON list of reveal messages
    (:func:`reveals_to_bytes`), one per revealer in address order: the same reveals, the same
    text, whichever peer writes it.  ProtocolError when over :data:`MAX_ROUND_REVEALS_BYTES`."""
    by_revealer: dict[str, list[Reveal]] = {}
    for r in reveals:
        by_revealer.setdefault(r.revealer.lower(), []).append(r)
    text = (
        "["
        + ",".join(
            reveals_to_bytes(task_id, round_no, m, by_revealer[m]).decode()
            for m in sorted(by_revealer)
        )
        + "]"
    )
    if len(text) > MAX_ROUND_REVEALS_BYTES:
        raise ProtocolError(
            f"round {round_no}'s {len(reveals)} reveals take {len(text)} bytes, over the "
            f"{MAX_ROUND_REVEALS_BYTES} an aggregate can record"
        )
    return text


def round_reveals_from_text(text: str, task_id: int, round_no: int) -> list[Reveal]:
    """The reveals recorded by :func:`round_reveals_to_text`; ProtocolError if ``text`` is not
    such a record of this task and round (each message checked as a gossiped one is)."""
    if len(text) > MAX_ROUND_REVEALS_BYTES:
        raise ProtocolError(f"recorded reveals of {len(text)} bytes exceed the limit")
    try:
        messages: Any = json.loads(text)
    except ValueError as exc:
        raise ProtocolError(f"malformed recorded reveals: {exc}") from None
    if not isinstance(messages, list):
        raise ProtocolError("malformed recorded reveals: not a list of reveal messages")
    reveals: list[Reveal] = []
    for message in messages:
        canonical = json.dumps(message, sort_keys=True, separators=(",", ":")).encode()
        reveals += reveals_from_bytes(canonical, task_id, round_no)
    return reveals
