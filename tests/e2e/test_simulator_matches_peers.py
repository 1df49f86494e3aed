"""The simulator is the network's twin: same seed, task and institutions -> same aggregates.

Real peer processes on Anvil, Kubo and libp2p run two rounds of the heart task from the
demo's plan; ``fedchain simulate`` runs the same plan in one process on the in-memory chain,
content store and gossip. Both must agree on every aggregate CID, byte for byte: with plain
updates, and with top-k encoded ones (decoding is deterministic everywhere), whose bytes on
Kubo carry the encoding.
"""

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


@pytest.mark.parametrize("encoding", [None, TOPK], ids=["plain", "topk"])
def test_simulator_and_real_peers_agree_on_every_aggregate(
    federation_factory, tmp_path, encoding: EncodingSpec | None
) -> None:
    plan = plan_for("heart", 3, seed=SEED)
    names = list(plan.institutions)
    spec = plan.spec if encoding is None else plan.spec.model_copy(update={"encoding": encoding})
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
        encoding=encoding,
    )
    assert simulated.aggregate_cids == real
    assert len(set(real)) == ROUNDS  # two different models, not one repeated
    for r in range(1, ROUNDS + 1):
        assert len(fed.deployer.submissions(fed.task_id, r)) == 3
    assert all(not v["left_out"] for v in simulated.record["rounds"])
    if encoding is None:
        return
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
