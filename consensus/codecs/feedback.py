"""Error feedback for lossy codecs: what an encoding dropped is sent in a later round.

The sender adds its residual (what the previous encoding left out) to this round's change,
encodes the sum, and keeps the new residual: the sum minus what the receivers will decode.  Over
rounds the decoded changes then add up to the true changes, up to the last residual.

The residual is the sender's private state: it never leaves the peer and plays no part in
agreement (receivers only ever decode what was sent).  The node keeps it in its private state
folder (:mod:`peer.residual`), so a restart does not lose it; when it is lost anyway (a deleted
or unreadable file), the peer starts again from zero, losing at most one round's dropped
entries: nothing agreed changes, a little accuracy at most.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

StateDict = dict[str, torch.Tensor]


class ErrorFeedback:
    """One sender's residual per tensor name (float32, the shape of the change)."""

    def __init__(self) -> None:
        self.residual: StateDict = {}

    def corrected(self, change: Mapping[str, torch.Tensor]) -> StateDict:
        """``change`` plus the residual kept from the previous encoding."""
        out: StateDict = {}
        for name, value in change.items():
            kept = self.residual.get(name)
            out[name] = value if kept is None or kept.shape != value.shape else value + kept
        return out

    def keep(self, target: Mapping[str, torch.Tensor], sent: Mapping[str, torch.Tensor]) -> None:
        """Remember what of ``target`` the receivers will not see (``target - sent``)."""
        self.residual = {name: target[name] - sent[name] for name in target}

    def clear(self) -> None:
        self.residual = {}
