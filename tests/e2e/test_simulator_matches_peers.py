"""The simulator is the network's twin: same seed, task and institutions -> same aggregates.

Real peer processes on Anvil, Kubo and libp2p run two rounds of the heart task from the
demo's plan; ``fedchain simulate`` runs the same plan in one process on the in-memory chain,
content store and gossip. Both must agree on every aggregate CID, byte for byte.
"""

from __future__ import annotations

import pytest
from rich.console import Console

from fedchain.localnet.plan import plan_for
from fedchain.simulator.run import simulate
from peer.content.cid import cid_from_bytes
from tests.e2e.conftest import wait_peers_exit, wait_task_done

pytestmark = pytest.mark.e2e

SEED = 11
ROUNDS = 2


def test_simulator_and_real_peers_agree_on_every_aggregate(federation_factory, tmp_path) -> None:
    plan = plan_for("heart", 3, seed=SEED)
    names = list(plan.institutions)
    fed = federation_factory(
        names, rounds=ROUNDS, spec=plan.spec, data=plan.data, max_samples=plan.max_samples
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
    )
    assert simulated.aggregate_cids == real
    assert len(set(real)) == ROUNDS  # two different models, not one repeated
