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
