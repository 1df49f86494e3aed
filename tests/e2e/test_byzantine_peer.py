"""A real peer process playing an attack through the test-only ``[testing]`` table.

One of three hospitals is told to play ``sign-flip`` (with ``FEDCHAIN_ALLOW_ATTACKS=1``): its
submitted update of round 1 must be exactly what :class:`ByzantineLearner` crafts in this
process from the same spec and data (training is bit-identical across processes), the honest
peers aggregate it like any other update (FedAvg has no defence), and the task completes.
Without the environment variable the same config is refused in one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from consensus.serialization import weights_to_bytes
from fedchain.attacks import ByzantineLearner, get_attack
from fedchain.localnet.devnet import LocalFederation
from models.tasks import Learner, LocalData, get_task, initial_weights
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from tests.e2e.conftest import SPEC, wait_peers_exit, wait_task_done
from tests.e2e.test_rounds import audit_rounds

pytestmark = pytest.mark.e2e

TESTING = '\n[testing]\nattack = "sign-flip"\nattack_params = { scale = 2.0 }\n'


def test_a_peer_plays_sign_flip_only_when_allowed(federation_factory, tmp_path: Path) -> None:
    names = ["cleveland", "hungary", "va"]
    fed: LocalFederation = federation_factory(names, rounds=2)
    byz = fed.hospital("va")
    byz.config_path.write_text(byz.config_path.read_text() + TESTING)

    refused = subprocess.run(
        [str(Path(sys.executable).parent / "fedchain"), "peer", "run", "-c", str(byz.config_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "FEDCHAIN_ALLOW_ATTACKS"},
    )
    errors = [ln for ln in refused.stderr.splitlines() if ln.startswith("fedchain: error:")]
    assert refused.returncode != 0 and len(errors) == 1, refused.stderr
    assert "[testing]" in errors[0] and "FEDCHAIN_ALLOW_ATTACKS=1" in errors[0]

    for name in names:
        extra = {"FEDCHAIN_ALLOW_ATTACKS": "1"} if name == "va" else None
        fed.spawn_peer(name, extra_env=extra)
    wait_task_done(fed, rounds=2)
    everyone = {h.identity.address.lower() for h in fed.hospitals}
    assert [a["updates"] for a in audit_rounds(fed, 2, honest=everyone)] == [3, 3]
    wait_peers_exit(fed)
    assert "TESTING ONLY" in fed.peers["va"].log_tail(200)

    task = get_task(SPEC.task)
    honest = Learner.from_local(task, SPEC, LocalData(partition="va"), "va")
    attack = get_attack("sign-flip", scale=2.0)
    want = ByzantineLearner(honest, attack, member="va", seed=SPEC.training.seed).train(
        initial_weights(SPEC), 1
    )
    assert fed.deployer is not None
    (sub,) = [
        s
        for s in fed.deployer.submissions(fed.task_id, 1)
        if s.member.lower() == byz.identity.address.lower()
    ]
    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    try:
        assert store.get(cid_from_bytes(sub.cid), timeout=30) == weights_to_bytes(want)
    finally:
        store.close()
