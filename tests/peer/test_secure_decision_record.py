"""A masked round whose reveals would not fit in its aggregate's content is refused, not
published: the next round could not fetch that model."""

from __future__ import annotations

from pathlib import Path

import torch

from consensus.secagg.fixed_point import FixedPoint
from peer.secure_aggregation import secure_decision
from tests.peer.test_secure_rounds_reveals import KEYS, PREVIOUS, Round


def decide(r: Round, previous: dict[str, torch.Tensor]):  # type: ignore[no-untyped-def]
    reveals = r.reveals_of("a") + r.reveals_of("b") + r.reveals_of("c")
    return secure_decision(
        FixedPoint(r.rounds.settings.clip_norm),
        KEYS,
        r.submissions,
        r.fetcher,
        previous,
        {},
        reveals,
        max_samples=1000,
    )


def test_reveals_that_overflow_the_model_header_refuse_the_round(tmp_path: Path) -> None:
    r = Round(tmp_path)
    decision, problems = decide(r, PREVIOUS)
    assert decision is not None and problems == {}
    # the same six values, beside 1,500 empty tensors whose names fill the header's room
    crowded = {**PREVIOUS, **{f"empty/{i:04d}": torch.zeros(0) for i in range(1500)}}
    decision, problems = decide(r, crowded)
    assert decision is None and set(problems) == {s.member for s in r.submissions}
    assert all("over the" in p and "cannot be recorded" in p for p in problems.values())
