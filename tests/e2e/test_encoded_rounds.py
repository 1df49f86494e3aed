"""Real peer processes (Anvil, one Kubo each, libp2p) with top-k updates: every round
finalizes, the updates on Kubo carry the encoding, and ``fedchain simulate`` with the same
encoding reaches the same aggregates byte for byte (decoding is deterministic everywhere)."""

from __future__ import annotations

import json
import struct

import pytest
from rich.console import Console

from consensus.codecs.pipeline import METADATA_KEY
from consensus.task_spec import EncodingSpec
from fedchain.localnet.plan import plan_for
from fedchain.simulator.run import simulate
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from tests.e2e.conftest import wait_peers_exit, wait_task_done

pytestmark = pytest.mark.e2e

SEED = 11
ROUNDS = 2
TOPK = EncodingSpec(codec="topk", params={"fraction": 0.5})


def test_real_peers_with_topk_updates_agree_with_the_simulator(
    federation_factory, tmp_path
) -> None:
    plan = plan_for("heart", 3, seed=SEED)
    names = list(plan.institutions)
    spec = plan.spec.model_copy(update={"encoding": TOPK})
    fed = federation_factory(
        names, rounds=ROUNDS, spec=spec, data=plan.data, max_samples=plan.max_samples
    )
    for name in names:
        fed.spawn_peer(name)
    wait_task_done(fed, rounds=ROUNDS)
    wait_peers_exit(fed)
    assert fed.deployer is not None
    real = [
        cid_from_bytes(fed.deployer.finalized_event(fed.task_id, r).aggregate_cid)
        for r in range(1, ROUNDS + 1)
    ]
    simulated = simulate(
        "heart",
        peers=3,
        rounds=ROUNDS,
        seed=SEED,
        out=tmp_path / "sim",
        local_only=False,
        console=Console(quiet=True),
        encoding=TOPK,
    )
    assert simulated.aggregate_cids == real
    for r in range(1, ROUNDS + 1):
        assert len(fed.deployer.submissions(fed.task_id, r)) == 3
        assert all(not v["left_out"] for v in simulated.record["rounds"])
    sub = fed.deployer.submissions(fed.task_id, 1)[0]
    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    try:
        data = store.get(cid_from_bytes(sub.cid), timeout=30)
    finally:
        store.close()
    (size,) = struct.unpack("<Q", data[:8])
    meta = json.loads(data[8 : 8 + size])["__metadata__"]
    assert json.loads(meta[METADATA_KEY])["stages"] == [
        {"name": "topk", "params": {"fraction": 0.5}}
    ]
