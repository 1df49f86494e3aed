"""The auditor's replay of securely aggregated rounds, on the in-memory federation.

Real peer code masks, reveals and attests (tests/peer/test_node_secagg.py); the auditor then
re-derives every round from the chain and the content store alone.  A hostile quorum is played
by the peers publishing another aggregate than the one their closed set unmasks to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from consensus.protocol import RoundStatus
from consensus.round_decision import RoundDecision
from consensus.secagg.rounds import Reveal
from consensus.serialization import header_notes
from fedchain.replay import ReplayedRound, Replayer
from fedchain.simulator.federation import VirtualFederation
from peer.confidential.envelope import is_sealed
from peer.content.cid import cid_from_bytes
from peer.secure_aggregation import SecureRounds, recorded_reveals, secure_bundle
from tests.peer.test_node import TinyLearner
from tests.peer.test_node_secagg import federation, secure_spec


def auditor(fed: VirtualFederation) -> Replayer:
    replayer = Replayer(fed.deployer, fed.peers["a"].content, fed.task_id, timeout=1.0)
    replayer.reference = TinyLearner("init").reference_weights()
    return replayer


def agreed_bytes(fed: VirtualFederation, round_no: int) -> bytes:
    cid = cid_from_bytes(fed.deployer.finalized_event(fed.task_id, round_no).aggregate_cid)
    return fed.peers["a"].content.get(cid, timeout=5)


def test_every_round_of_a_full_federation_replays_and_records_no_reveals(
    tmp_path: Path,
) -> None:
    fed = federation(tmp_path, rounds=2)
    fed.run()
    assert fed.task_complete()
    rounds = auditor(fed).replay_all()
    assert [r.round for r in rounds] == [1, 2]
    assert all(r.ok and not r.left_out and not r.problem for r in rounds), rounds
    assert all(len(r.scores) == 4 for r in rounds)
    # nobody dropped out: the aggregates are plain bundles, as before reveals were recorded
    assert all(header_notes(agreed_bytes(fed, r)) == {} for r in (1, 2))


def test_rounds_with_a_member_that_never_submitted_replay_from_the_recorded_reveals(
    tmp_path: Path,
) -> None:
    fed = federation(tmp_path, rounds=2)
    fed.crash("d")
    fed.run()
    assert [fed.deployer.round_info(fed.task_id, r).status for r in (1, 2)] == [
        RoundStatus.FINALIZED
    ] * 2
    d = fed.peers["d"].identity.address.lower()
    for round_no in (1, 2):
        reveals = recorded_reveals(agreed_bytes(fed, round_no), fed.task_id, round_no)
        submitters = {fed.peers[n].identity.address.lower() for n in "abc"}
        assert {(r.revealer, r.dropped) for r in reveals} == {(s, d) for s in submitters}
    rounds = auditor(fed).replay_all()
    assert [r.round for r in rounds] == [1, 2]
    assert all(r.ok and not r.problem for r in rounds), rounds
    assert all(len(r.scores) == 3 for r in rounds)


Publish = Callable[[int, int, RoundDecision, list[Reveal]], bytes]


def replay_hostile_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, publish: Publish
) -> ReplayedRound:
    """d never submits; a, b and c each publish ``publish(task, round, decision, reveals)`` as
    the aggregate, which they all attest and the round finalizes with; the auditor replays it."""

    def aggregate_bytes(self: SecureRounds, round_no: int, decision: RoundDecision) -> bytes:
        return publish(self.task_id, round_no, decision, self._used.get(round_no, []))

    monkeypatch.setattr(SecureRounds, "aggregate_bytes", aggregate_bytes)
    fed = federation(tmp_path, rounds=1)
    fed.crash("d")
    fed.run()
    assert fed.deployer.round_info(fed.task_id, 1).status is RoundStatus.FINALIZED
    (replayed,) = auditor(fed).replay_all()
    assert not replayed.ok, replayed
    return replayed


def test_a_tampered_aggregate_is_flagged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def shifted(
        task_id: int, round_no: int, decision: RoundDecision, reveals: list[Reveal]
    ) -> bytes:
        weights = {k: v + 0.25 for k, v in decision.aggregate.weights.items()}
        moved = replace(decision, aggregate=replace(decision.aggregate, weights=weights))
        return secure_bundle(task_id, round_no, moved, reveals)

    replayed = replay_hostile_round(tmp_path, monkeypatch, shifted)
    assert replayed.scores_match and replayed.recomputed_cid not in (None, replayed.agreed_cid)
    assert replayed.why().startswith("the recomputed aggregate is ")


def test_an_aggregate_without_its_reveals_is_reported_not_crashed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def without_reveals(
        task_id: int, round_no: int, decision: RoundDecision, reveals: list[Reveal]
    ) -> bytes:
        return secure_bundle(task_id, round_no, decision, [])

    replayed = replay_hostile_round(tmp_path, monkeypatch, without_reveals)
    assert replayed.recomputed_cid is None and "records no reveals" in replayed.why(), replayed


def test_an_aggregate_missing_one_submitters_seed_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def one_short(
        task_id: int, round_no: int, decision: RoundDecision, reveals: list[Reveal]
    ) -> bytes:
        return secure_bundle(task_id, round_no, decision, sorted(reveals, key=str)[1:])

    replayed = replay_hostile_round(tmp_path, monkeypatch, one_short)
    assert "does not record the pair seeds of" in replayed.why(), replayed


def test_a_members_only_masked_round_replays_with_the_audit_key(tmp_path: Path) -> None:
    """Members-only sealing wraps the whole content, reveals included, as before."""
    fed = federation(
        tmp_path, rounds=1, spec=secure_spec().model_copy(update={"confidentiality": "members"})
    )
    fed.crash("d")
    fed.run()
    assert fed.deployer.round_info(fed.task_id, 1).status is RoundStatus.FINALIZED
    assert is_sealed(agreed_bytes(fed, 1))
    replayer = Replayer(
        fed.deployer,
        fed.peers["a"].content,
        fed.task_id,
        timeout=1.0,
        audit_secret=fed.audit_secret,
    )
    replayer.reference = TinyLearner("init").reference_weights()
    (replayed,) = replayer.replay_all()
    assert replayed.ok and len(replayed.scores) == 3, replayed
