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
