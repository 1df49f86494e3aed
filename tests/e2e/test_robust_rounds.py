"""One of four hospitals scales its update by 100; the default rule keeps the model on course.

Real peer processes, Anvil and one Kubo per hospital. ``va`` plays ``scaling`` (factor 100)
through the test-only ``[testing]`` table. The honest peers aggregate with the task spec's
default rule: the finalized model must stay within 2 points of pooled-test accuracy of a clean
run of the same spec and data (the simulator, which trains and aggregates bit-identically to
peer processes), every round must replay to the same aggregate and scores for an auditor, and
the attacker's claims must earn nothing while every honest hospital earns credit.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from consensus.serialization import agreed_model_from_bytes
from consensus.task_spec import AggregationSpec, TaskSpec
from fedchain.localnet.devnet import LocalFederation
from fedchain.replay import Replayer
from fedchain.simulator.partitions import Population
from fedchain.simulator.run import simulate
from models.sites import concatenate
from models.tasks import Learner, LocalData, get_task
from models.tasks.learner import evaluate_weights, reference_weights
from models.training import Samples
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from tests.e2e.conftest import SPEC, wait_peers_exit, wait_task_done

pytestmark = pytest.mark.e2e

NAMES = ["cleveland", "hungary", "switzerland", "va"]
ROUNDS = 3
SCALING = '\n[testing]\nattack = "scaling"\nattack_params = { factor = 100.0 }\n'
DEFAULT_RULE_SPEC: TaskSpec = SPEC.model_copy(
    update={"name": "heart-robust-e2e", "aggregation": AggregationSpec()}
)


def _learners(spec: TaskSpec) -> dict[str, Learner]:
    task = get_task(spec.task)
    return {n: Learner.from_local(task, spec, LocalData(partition=n), n) for n in NAMES}


def _pooled_accuracy(spec: TaskSpec, weights: dict[str, object]) -> float:
    tests = [ln.data.test for ln in _learners(spec).values()]
    pooled = Samples(concatenate([t.x for t in tests]), np.concatenate([t.y for t in tests]))
    return evaluate_weights(spec, weights, pooled)["accuracy"]  # type: ignore[arg-type]


def test_default_rule_resists_a_scaled_update_and_pays_it_nothing(
    federation_factory, tmp_path: Path
) -> None:
    spec = DEFAULT_RULE_SPEC
    assert spec.aggregation.rule != "fedavg"
    fed: LocalFederation = federation_factory(NAMES, rounds=ROUNDS, spec=spec)
    attacker = fed.hospital("va")
    attacker.config_path.write_text(attacker.config_path.read_text() + SCALING)
    for name in NAMES:
        fed.spawn_peer(name, extra_env={"FEDCHAIN_ALLOW_ATTACKS": "1"} if name == "va" else None)
    wait_task_done(fed, rounds=ROUNDS)
    wait_peers_exit(fed)
    assert fed.deployer is not None
    client = fed.deployer

    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    try:
        replayed = Replayer(client, store, fed.task_id).replay_all()
        assert [r.round for r in replayed] == list(range(1, ROUNDS + 1))
        assert all(r.ok for r in replayed), replayed
        bad = attacker.identity.address
        for r in replayed:
            scores = dict(r.scores)
            assert scores.get(bad, 0) == 0, (r.round, scores, r.no_credit)
        last = client.finalized_event(fed.task_id, ROUNDS).aggregate_cid
        attacked = agreed_model_from_bytes(
            store.get(cid_from_bytes(last), timeout=30), reference=reference_weights(spec)
        )
    finally:
        store.close()
    assert client.contribution_of(bad) == 0
    # The auditor's command says the same, from outside any peer.
    chain = fed.chain
    assert chain is not None
    replay = subprocess.run(
        [
            str(Path(sys.executable).parent / "fedchain"), "replay",
            "--rpc-url", chain.rpc_url, "--contract", client.address,
            "--task", str(fed.task_id), "--ipfs-api", fed.hospitals[0].kubo.api_multiaddr,
        ],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert replay.returncode == 0, replay.stderr
    assert f"{ROUNDS} finalized rounds replay" in replay.stdout
    honest = [h for h in fed.hospitals if h.name != "va"]
    assert all(client.contribution_of(h.identity.address) > 0 for h in honest)

    clean = simulate(
        spec.task,
        len(NAMES),
        ROUNDS,
        0,
        out=tmp_path / "clean",
        local_only=False,
        console=Console(quiet=True),
        given_population=Population(spec, _learners(spec), "built-in"),
    )
    assert clean.final_weights is not None
    got, want = _pooled_accuracy(spec, attacked), _pooled_accuracy(spec, clean.final_weights)
    assert abs(got - want) <= 0.02, (got, want)
