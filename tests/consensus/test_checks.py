"""Chain-only verdicts: free riders and copies are left out the same way by every peer."""

from __future__ import annotations

import torch

from consensus.checks import SubmittedDigest, all_zero, chain_verdicts
from consensus.protocol import effective_quorum

MODEL = b"\x01" * 32


def test_global_model_sent_back_is_a_free_rider() -> None:
    subs = [SubmittedDigest("a", b"\x02" * 32), SubmittedDigest("b", MODEL)]
    verdicts = chain_verdicts(subs, MODEL)
    assert list(verdicts) == ["b"]
    assert "global model" in verdicts["b"]


def test_copies_are_left_out_and_the_earliest_submission_keeps_its_update() -> None:
    same = b"\x03" * 32
    subs = [
        SubmittedDigest("a", same),
        SubmittedDigest("b", b"\x04" * 32),
        SubmittedDigest("c", same),
        SubmittedDigest("d", same),
    ]
    verdicts = chain_verdicts(subs, MODEL)
    assert sorted(verdicts) == ["c", "d"]
    assert verdicts["c"] == "copy: byte-identical to the update of a"


def test_distinct_updates_are_all_kept() -> None:
    subs = [SubmittedDigest(m, bytes([i]) * 32) for i, m in enumerate("abc", start=5)]
    assert chain_verdicts(subs, MODEL) == {}


def test_all_zero_weights() -> None:
    assert all_zero({"w": torch.zeros(3), "b": torch.zeros(1)})
    assert not all_zero({"w": torch.zeros(3), "b": torch.tensor([1e-30])})


def test_effective_quorum_is_always_a_strict_majority_of_eligible_members() -> None:
    for eligible in range(1, 40):
        for quorum in range(1, eligible + 3):
            need = effective_quorum(quorum, eligible)
            assert 2 * need > eligible
            assert need <= eligible
            assert need >= min(quorum, eligible)
    assert effective_quorum(3, 4) == 3
    assert effective_quorum(3, 6) == 4  # two members admitted mid-task
    assert effective_quorum(3, 2) == 2  # members removed
