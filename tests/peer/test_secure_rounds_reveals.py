"""SecureRounds with reveals, one member's view: what it publishes, what it waits for, what it
refuses, and that the unmasked sum is fixed-point FedAvg of the submitters only.

Four members a, b, c, d are expected in the round; d never submits.  The chain is replaced by
the round's keys (``round_keys``) and the content store by an in-memory one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from nacl.public import PrivateKey

from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import (
    Reveal,
    RoundKeys,
    encode_with_weight,
    fixed_point_fedavg,
    mask_update,
    reveals_for,
)
from consensus.secagg.state import apply_change
from consensus.secagg.wire import masked_to_bytes
from consensus.task_spec import SecureAggregationSettings
from peer.content.cid import Cid
from peer.content.memory import MemoryContentNetwork
from peer.ledger.types import Submission
from peer.secure_aggregation import REVEAL_REPEAT_SECONDS, RevealsPending, SecureRounds
from peer.updates import ContentFetcher

CLIP = 2.0
ROUND = 3
NAMES = ["a", "b", "c", "d"]
ADDRESS = {n: f"0x{k + 1:040x}" for k, n in enumerate(NAMES)}
SECRET = {n: bytes([k + 7]) * 32 for k, n in enumerate(NAMES)}
KEYS = RoundKeys(1, ROUND, {ADDRESS[n]: bytes(PrivateKey(SECRET[n]).public_key) for n in NAMES})
SAMPLES = {"a": 10, "b": 20, "c": 30}
PREVIOUS = {"w": torch.zeros(6, dtype=torch.float32)}


class Round:
    """Member a's SecureRounds, a content store holding a, b and c's masked updates, and the
    chain's closed set (a, b, c)."""

    def __init__(self, tmp_path: Path) -> None:
        self.sent: list[tuple[int, list[Reveal]]] = []
        self.now = 100.0
        self.rounds = SecureRounds(
            SecureAggregationSettings(clip_norm=CLIP),
            ledger=None,  # type: ignore[arg-type]  # round_keys is given below
            task_id=1,
            me=ADDRESS["a"],
            secret=SECRET["a"],
            state_dir=tmp_path,
            publish=lambda r, reveals: self.sent.append((r, reveals)),
            clock=lambda: self.now,
        )
        self.rounds.round_keys = lambda round_no: KEYS  # type: ignore[method-assign]
        fp = FixedPoint(CLIP)
        rng = np.random.default_rng(5)
        self.changes = {n: rng.uniform(-0.3, 0.3, 6) for n in SAMPLES}
        store = MemoryContentNetwork().store("a")
        self.fetcher = ContentFetcher(store, timeout=1)
        self.submissions = []
        for n, change in self.changes.items():
            masked = mask_update(
                encode_with_weight(fp, change, SAMPLES[n]), ADDRESS[n], SECRET[n], KEYS
            )
            cid = store.add(masked_to_bytes(masked))
            self.submissions.append(Submission(ADDRESS[n], b"", Cid.parse(cid).binary, SAMPLES[n]))

    def decide(self):  # type: ignore[no-untyped-def]
        return self.rounds.decide(
            ROUND, self.submissions, self.fetcher, PREVIOUS, {}, max_samples=1000
        )

    def reveals_of(self, name: str) -> list[Reveal]:
        return reveals_for(ADDRESS[name], SECRET[name], KEYS, [ADDRESS[n] for n in SAMPLES])


def test_it_reveals_its_seed_with_the_dropped_member_then_waits_for_the_others(
    tmp_path: Path,
) -> None:
    r = Round(tmp_path)
    with pytest.raises(RevealsPending) as pending:
        r.decide()
    assert sorted(pending.value.waiting) == [ADDRESS["b"], ADDRESS["c"]]
    assert "round fails at its attest deadline" in pending.value.waiting[ADDRESS["b"]]
    # Exactly one seed goes out: a's with d, never a seed with a submitter.
    assert r.sent == [(ROUND, r.reveals_of("a"))]
    assert [x.dropped for x in r.sent[0][1]] == [ADDRESS["d"]]
    with pytest.raises(RevealsPending):  # asking again does not publish again
        r.decide()
    assert len(r.sent) == 1


def test_with_every_submitters_reveal_the_sum_is_fixed_point_fedavg_of_the_submitters(
    tmp_path: Path,
) -> None:
    r = Round(tmp_path)
    with pytest.raises(RevealsPending):
        r.decide()
    r.rounds.receive_reveals(ROUND, r.reveals_of("b"))
    with pytest.raises(RevealsPending) as pending:
        r.decide()
    assert list(pending.value.waiting) == [ADDRESS["c"]]
    r.rounds.receive_reveals(ROUND, r.reveals_of("c"))
    decision, problems = r.decide()
    assert problems == {} and decision is not None
    mean = fixed_point_fedavg(
        FixedPoint(CLIP), list(r.changes.values()), list(SAMPLES.values())
    ).mean_change
    want = apply_change(PREVIOUS, mean)
    assert torch.equal(decision.aggregate.weights["w"], want["w"])
    assert sorted(decision.aggregate.accepted) == sorted(ADDRESS[n] for n in SAMPLES)


def test_a_reveal_naming_a_submitter_is_dropped_and_a_wrong_seed_fails_the_sum(
    tmp_path: Path,
) -> None:
    r = Round(tmp_path)
    with pytest.raises(RevealsPending):
        r.decide()
    # b also "reveals" a seed with c (a submitter): the whole message is refused, not used.
    r.rounds.receive_reveals(
        ROUND, [*r.reveals_of("b"), Reveal(ADDRESS["b"], ADDRESS["c"], b"\x05" * 32)]
    )
    r.rounds.receive_reveals(ROUND, r.reveals_of("c"))
    with pytest.raises(RevealsPending) as pending:
        r.decide()
    assert "refused" in pending.value.waiting[ADDRESS["b"]]
    # b's next message is a wrong seed with d: the sum is noise and fails its checks.
    r.rounds.receive_reveals(ROUND, [Reveal(ADDRESS["b"], ADDRESS["d"], b"\x09" * 32)])
    decision, problems = r.decide()
    assert decision is None
    assert all("masked sum is refused" in why for why in problems.values())


def test_reveals_are_resent_while_the_round_waits_and_forgotten_after_it(tmp_path: Path) -> None:
    r = Round(tmp_path)
    with pytest.raises(RevealsPending):
        r.decide()
    r.rounds.resend_reveals(ROUND, waiting_for_attestations=True)
    assert len(r.sent) == 1  # not yet due
    r.now += REVEAL_REPEAT_SECONDS
    r.rounds.resend_reveals(ROUND, waiting_for_attestations=True)
    assert len(r.sent) == 2 and r.sent[1] == r.sent[0]
    r.now += REVEAL_REPEAT_SECONDS
    r.rounds.resend_reveals(ROUND, waiting_for_attestations=False)  # the round ended
    r.rounds.resend_reveals(ROUND + 1, waiting_for_attestations=True)  # the next one opened
    assert len(r.sent) == 2
    r.rounds.receive_reveals(ROUND, r.reveals_of("b"))  # late for an old round: ignored
    assert r.rounds._received == {}
