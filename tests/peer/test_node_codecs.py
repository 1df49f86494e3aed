"""Encoded updates through real PeerNodes on the in-memory backends: rounds finalize with one
agreed aggregate, and a member publishing a malformed top-k encoding is left out, with the
decoder's reason, by every other member."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from consensus.codecs.feedback import ErrorFeedback
from consensus.codecs.pipeline import UpdateEncoding
from consensus.task_spec import TaskSpec
from fedchain.replay import Replayer
from fedchain.simulator.federation import TaskTiming, VirtualFederation
from peer.node import StepOutcome
from peer.residual import RESIDUAL_FILE, ResidualStore
from tests.peer.test_node import NAMES, TinyLearner, aggregates, history


def _spec(encoding: Any) -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "tiny",
            "task": "heart",
            "model": {"arch": "logreg", "kwargs": {"in_features": 4}},
            "training": {"epochs": 1, "lr": 0.1, "batch_size": 4, "seed": 0},
            "aggregation": "fedavg",
            "encoding": encoding,
        }
    )


def _federation(tmp_path: Path, encoding: Any, rounds: int = 2) -> VirtualFederation:
    fed = VirtualFederation(
        tmp_path,
        _spec(encoding),
        {n: TinyLearner(n) for n in NAMES},
        TinyLearner("init").reference_weights(),
        TaskTiming(rounds=rounds),
    )
    fed.start_all()
    return fed


class DuplicateIndices(UpdateEncoding):
    """A member whose encoder writes one top-k position twice (what a buggy or hostile
    implementation might send)."""

    def encode(
        self,
        weights: Mapping[str, torch.Tensor],
        previous: Mapping[str, torch.Tensor],
        feedback: ErrorFeedback | None = None,
    ) -> bytes:
        stored = st_load(super().encode(weights, previous, feedback))
        stored["w:indices"] = torch.tensor([1, 1], dtype=torch.int32)
        return st_save(stored, metadata=self.metadata())


def test_encoded_rounds_finalize_and_record_their_size(tmp_path: Path) -> None:
    for codec in ("int8", {"codec": "topk", "params": {"fraction": 0.5}}, "fp16"):
        fed = _federation(tmp_path / str(codec)[:12], codec)
        fed.run()
        assert fed.task_complete()
        assert len(aggregates(fed)) == 2
        for name in NAMES:
            h = history(fed, name)
            assert not h[1]["left_out"] and not h[2]["left_out"], h
            assert isinstance(h[2]["update_bytes"], int) and h[2]["update_bytes"] > 0


def test_malformed_topk_update_is_left_out_and_the_round_finalizes(tmp_path: Path) -> None:
    fed = _federation(tmp_path, {"codec": "topk", "params": {"fraction": 0.5}}, rounds=1)
    node = fed.peers["d"].node
    assert node is not None
    node._encoding = DuplicateIndices(node._encoding.codec)
    fed.run()
    assert fed.task_complete()
    assert len(aggregates(fed)) == 1
    d = fed.peers["d"].identity.address
    aggregated = 0
    for name in ("a", "b", "c"):
        entry = history(fed, name)[1]
        if entry["aggregate_cid"] is None:
            continue  # quorum reached before this member aggregated
        aggregated += 1
        assert entry["left_out"] == {d: "tensor 'w': top-k indices hold a duplicate"}, entry
        assert d not in entry["accepted"]
    assert aggregated >= 2


def test_an_auditor_replays_every_encoded_round_to_the_agreed_aggregate(tmp_path: Path) -> None:
    fed = _federation(tmp_path, {"codec": "topk", "params": {"fraction": 0.5}}, rounds=3)
    fed.run()
    replayed = Replayer(fed.deployer, fed.peers["a"].content, fed.task_id, timeout=1.0)
    replayed.reference = TinyLearner("init").reference_weights()  # the stand-in model's names
    rounds = replayed.replay_all()
    assert [r.round for r in rounds] == [1, 2, 3]
    assert all(r.ok and not r.left_out for r in rounds), rounds


TOPK = {"codec": "topk", "params": {"fraction": 0.5}}


def test_a_crash_between_any_two_steps_keeps_the_topk_residual(tmp_path: Path) -> None:
    """The residual is in the state folder, written once the update is on the chain: a peer
    that crashes anywhere and restarts sends the same updates, so the aggregates are the same."""
    reference = _federation(tmp_path / "ref", TOPK, rounds=3)
    reference.run()
    expected = aggregates(reference)
    residual = reference.peers["a"].state_dir / RESIDUAL_FILE
    assert residual.stat().st_mode & 0o777 == 0o600
    lossy = _federation(tmp_path / "lost", TOPK, rounds=3)
    lossy.run(until=lambda: lossy.deployer.task(lossy.task_id).finalized_rounds >= 1)
    lossy.crash("a")
    (lossy.peers["a"].state_dir / RESIDUAL_FILE).unlink()
    lossy.start("a")
    lossy.run()
    assert aggregates(lossy)[0] == expected[0]
    assert aggregates(lossy)[1:] != expected[1:]  # the residual does matter
    total = _steps_of_a(_federation(tmp_path / "count", TOPK, rounds=3))
    assert total >= 6
    for crash_after in range(1, total):
        fed = _federation(tmp_path / f"crash{crash_after}", TOPK, rounds=3)
        steps = 0
        while fed.running():
            acted = False
            for peer in fed.running():
                acted |= fed.step_peer(peer.name) is StepOutcome.ACTED
                if peer.name == "a":
                    steps += 1
                    if steps == crash_after:
                        fed.crash("a")
                        fed.start("a")
            if not acted:
                fed.advance()
        assert aggregates(fed) == expected, f"crash after step {crash_after}"


def _steps_of_a(fed: VirtualFederation) -> int:
    steps = 0
    while fed.running():
        acted = False
        for peer in fed.running():
            acted |= fed.step_peer(peer.name) is StepOutcome.ACTED
            steps += peer.name == "a"
        if not acted:
            fed.advance()
    return steps


def test_residual_store_gives_only_the_previous_rounds_residual(tmp_path: Path) -> None:
    store = ResidualStore(tmp_path, "topk-0.5")
    fb = ErrorFeedback()
    fb.residual = {"w": torch.ones(3)}
    store.after(4, fb)
    fresh = ResidualStore(tmp_path, "topk-0.5")  # as a restarted peer reads it
    assert torch.equal(fresh.before(5).residual["w"], torch.ones(3))
    assert fresh.before(6).residual == {}  # older than the previous round
    assert ResidualStore(tmp_path, "topk-0.1").before(5).residual == {}  # another encoding
    (tmp_path / RESIDUAL_FILE).write_bytes(b"garbage")
    assert ResidualStore(tmp_path, "topk-0.5").before(5).residual == {}
