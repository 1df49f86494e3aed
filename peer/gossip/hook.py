"""The validator hook both gossip backends run, and how they name a refusal.

Kept in one place so that the real (py-libp2p) and the in-memory gossip count
rejections under exactly the same reasons.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

Validator = Callable[[str, bytes], object]
"""``(sender peer ID, data) -> result``; raising or returning False refuses the message."""

TOO_LARGE: Final = "too large"
"""Reason for a message over the receiver's ``max_message_bytes``."""
TIMED_OUT: Final = "validation timeout"
"""Reason for a message whose validation took too long (real transport only)."""
REFUSED: Final = "refused"
"""Reason for a message the validator returned False for."""


def rejection_reason(error: BaseException) -> str:
    """The counter key of a validator exception: its ``reason`` if it has one, else its type."""
    return str(getattr(error, "reason", "") or type(error).__name__)
