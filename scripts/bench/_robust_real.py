"""The robustness bench's one run through real peer processes (Anvil, one Kubo per hospital).

Four heart hospitals; ``va`` scales its update by 100 through the test-only ``[testing]`` table;
the honest peers aggregate with the default rule.  Reported: pooled-test accuracy of the
finalized model beside the same run without the attacker (the simulator, which trains and
aggregates bit-identically), every member's claimed credit, and whether an auditor's replay of
every round matches the chain.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

NAMES = ["cleveland", "hungary", "switzerland", "va"]
ATTACKER = "va"
SCALING = '\n[testing]\nattack = "scaling"\nattack_params = { factor = 100.0 }\n'


def run_real(out: Path, rounds: int) -> dict[str, Any]:
    from rich.console import Console

    from consensus.serialization import agreed_model_from_bytes
    from fedchain.localnet.devnet import LocalFederation, TaskParams
    from fedchain.replay import Replayer
    from fedchain.simulator.partitions import Population
    from fedchain.simulator.run import simulate
    from models.sites import concatenate
    from models.tasks import Learner, LocalData, get_task
    from models.tasks.learner import evaluate_weights, reference_weights
    from models.training import Samples
    from peer.content.cid import cid_from_bytes
    from peer.content.kubo import KuboContentStore

    task = get_task("heart")
    spec = task.default_spec(name="heart-robust-real")
    learners = {n: Learner.from_local(task, spec, LocalData(partition=n), n) for n in NAMES}
    tests = [ln.data.test for ln in learners.values()]
    pooled = Samples(concatenate([t.x for t in tests]), np.concatenate([t.y for t in tests]))
    started = time.monotonic()
    fed = LocalFederation(out / "federation", NAMES)
    try:
        fed.start(TaskParams(spec=spec, rounds=rounds, quorum=len(NAMES)))
        attacker = fed.hospital(ATTACKER)
        attacker.config_path.write_text(attacker.config_path.read_text() + SCALING)
        for name in NAMES:
            extra = {"FEDCHAIN_ALLOW_ATTACKS": "1"} if name == ATTACKER else None
            fed.spawn_peer(name, extra_env=extra)
        codes = fed.wait_peers_exit(timeout=60.0 * rounds + 240.0)
        client = fed.deployer
        assert client is not None
        if any(code != 0 for code in codes.values()) or not client.task(fed.task_id).completed:
            raise RuntimeError(f"the real federation did not complete: exit codes {codes}")
        with KuboContentStore(fed.hospitals[0].kubo.api_multiaddr) as store:
            replayed = Replayer(client, store, fed.task_id).replay_all()
            last = client.finalized_event(fed.task_id, rounds).aggregate_cid
            weights = agreed_model_from_bytes(
                store.get(cid_from_bytes(last), timeout=60), reference=reference_weights(spec)
            )
        credit = {h.name: client.contribution_of(h.identity.address) for h in fed.hospitals}
    finally:
        fed.close()
    wall = time.monotonic() - started
    clean = simulate(
        "heart",
        len(NAMES),
        rounds,
        0,
        out=out / "clean-simulation",
        local_only=False,
        console=Console(quiet=True),
        given_population=Population(spec, learners, "built-in"),
    )
    assert clean.final_weights is not None
    return {
        "rule": spec.aggregation.model_dump(),
        "rounds": rounds,
        "attacker": ATTACKER,
        "attack": {"name": "scaling", "factor": 100.0},
        "accuracy_attacked": evaluate_weights(spec, weights, pooled)["accuracy"],
        "accuracy_clean": evaluate_weights(spec, clean.final_weights, pooled)["accuracy"],
        "credit": credit,
        "replay_ok": all(r.ok for r in replayed),
        "wall_seconds": round(wall, 1),
    }
