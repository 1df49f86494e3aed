"""The node's working state of the rounds it is in, in one place.

Everything here can be lost in a crash: the chain and the content store hold the
truth, and a restarted node rebuilds what it needs from them (see
:mod:`peer.node`).  A round's state lives from the moment the node sees the
round until its record is published, then only its number is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from peer.claims import Claim

StateDict = dict[str, torch.Tensor]


@dataclass
class RoundState:
    """What this node has done in one round so far."""

    round: int
    started: float | None = None
    """Clock monotonic time the node first saw the round open (None: seen only after it ended)."""
    update_cid: str | None = None
    update_bytes: int | None = None
    not_trained: str | None = None
    epsilon: float | None = None
    """Epsilon this institution has spent once this round's update is out (DP tasks)."""
    aggregate_cid: str | None = None
    accepted: list[str] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)
    no_credit: dict[str, str] = field(default_factory=dict)
    """Members whose checked update earned 0, with the reason (``consensus.contribution``)."""
    scores_root: str | None = None
    claim: Claim | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    acted_at: float | None = None
    """Clock monotonic time this node's last on-chain step (submit, attest) returned: what it
    waited from there on is the next ``wait_*`` entry of ``seconds``."""
    aggregate: StateDict | None = None
    """The aggregate this node computed, kept until the round's record is written."""
    attested: bool = False
    """Attested, or nothing left to attest (an attestation refused as a duplicate counts)."""
    ineligible: bool = False
    """Admitted after the round opened: it may neither submit nor attest."""

    @property
    def submitted(self) -> bool:
        """Submitted (or decided not to train) in this run of the node."""
        return self.update_cid is not None or self.not_trained is not None


class RoundBook:
    """The rounds the node is in; a round leaves the book once its record is published."""

    def __init__(self) -> None:
        self._rounds: dict[int, RoundState] = {}
        self._finished: set[int] = set()
        self.current: int | None = None

    def __getitem__(self, round_no: int) -> RoundState:
        return self._rounds.setdefault(round_no, RoundState(round=round_no))

    def ended_since(self, round_no: int) -> list[int]:
        """The earlier rounds the node was in that must have ended now that the chain is at
        ``round_no`` (oldest first). The book moves on only in :meth:`enter`, after they are
        finished, so an outage while finishing them makes the next pass try again."""
        if self.current is None or self.current == round_no:
            return []
        return list(range(self.current, round_no))

    def enter(self, round_no: int, now: float) -> None:
        """Note that the chain's current round is ``round_no``."""
        if self.current == round_no:
            return
        self.current = round_no
        self[round_no].started = now

    def is_finished(self, round_no: int) -> bool:
        return round_no in self._finished

    def finish(self, round_no: int) -> None:
        """The round's record is out: keep only its number."""
        self._finished.add(round_no)
        self._rounds.pop(round_no, None)
