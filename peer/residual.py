"""The sender's error-feedback residual, kept in the peer's private state folder.

A lossy encoding with error feedback (top-k) leaves part of each round's change behind; the
peer adds it to its next round's change (:mod:`consensus.codecs.feedback`).  That residual is
this institution's private state: it never leaves the peer, it is not part of any agreement,
and it is written owner-only next to ``history.jsonl`` so that a restarted peer goes on where
it left off.

The file says after which round it was made, and it is written only once that round's update
is on the chain.  So a peer that crashes before submitting re-encodes the round from the
residual it had (the same bytes as without the crash), and a residual older than the previous
round, from another encoding, or unreadable is dropped: starting from zero loses at most the
entries one round left behind, never double-sends them.
"""

from __future__ import annotations

import logging
from pathlib import Path

from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from consensus.codecs.feedback import ErrorFeedback
from consensus.codecs.pipeline import read_metadata
from fedchain.errors import StateError
from fedchain.private_files import write_private_bytes

log = logging.getLogger("fedchain.peer.residual")

RESIDUAL_FILE = "residual.safetensors"


class ResidualStore:
    """Loads and saves one peer's residual for the task's encoding ``encoding`` (its name)."""

    def __init__(self, state_dir: Path, encoding: str) -> None:
        self.path = state_dir / RESIDUAL_FILE
        self._encoding = encoding
        self._cached: tuple[int, ErrorFeedback] | None = None

    def before(self, round_no: int) -> ErrorFeedback:
        """A copy of the residual left after round ``round_no - 1`` (empty if there is none)."""
        if self._cached is None or self._cached[0] != round_no - 1:
            self._cached = self._read()
        after, feedback = self._cached
        out = ErrorFeedback()
        if after == round_no - 1:
            out.residual = dict(feedback.residual)
        return out

    def after(self, round_no: int, feedback: ErrorFeedback) -> None:
        """Keep ``feedback`` as the residual after round ``round_no`` (its update submitted)."""
        meta = {"after_round": str(round_no), "encoding": self._encoding}
        try:
            write_private_bytes(self.path, st_save(dict(feedback.residual), metadata=meta))
        except OSError as exc:
            raise StateError(f"cannot write the residual to {self.path}: {exc}") from None
        self._cached = (round_no, feedback)

    def _read(self) -> tuple[int, ErrorFeedback]:
        empty = (-1, ErrorFeedback())
        if not self.path.is_file():
            return empty
        try:
            data = self.path.read_bytes()
            tensors = st_load(data)
            meta = read_metadata(data, max_header=len(data))
            after = int(meta.get("after_round", "-1"))
        except (OSError, SafetensorError, ValueError, RuntimeError) as exc:
            log.warning("ignoring the unreadable residual in %s: %s", self.path, exc)
            return empty
        if meta.get("encoding") != self._encoding:
            return empty
        feedback = ErrorFeedback()
        feedback.residual = tensors
        return after, feedback
