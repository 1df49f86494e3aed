"""The multi-modal HAPT task through real peer processes, Anvil, one Kubo each and libp2p.

Three institutions, the last without a gyroscope. The test is the auditor: it reads the
chain, fetches every update and aggregate from Kubo, recomputes each aggregate with NumPy
byte for byte, and checks that the institution without a gyroscope left the gyroscope
encoder exactly as the round's global model had it (it has no gradient to give there).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load as np_load

from consensus.protocol import RoundStatus
from consensus.task_spec import AggregationSpec
from fedchain.localnet.plan import plan_for
from peer.content.cid import cid_from_bytes, digest_of_cid
from peer.content.kubo import KuboContentStore
from tests.e2e.conftest import round_status, wait_peers_exit, wait_task_done
from tests.e2e.test_rounds import independent_weighted_mean

pytestmark = pytest.mark.e2e

ROUNDS = 2


def test_hapt_with_an_institution_lacking_the_gyroscope(federation_factory) -> None:
    plan = plan_for("hapt", 3)
    names = list(plan.institutions)
    no_gyro = names[-1]
    assert plan.data[no_gyro]["modalities"] == ["acc"]
    assert all("modalities" not in plan.data[n] for n in names[:-1])
    fed = federation_factory(
        names,
        rounds=ROUNDS,
        # FedAvg, re-derived independently below
        spec=plan.spec.model_copy(update={"aggregation": AggregationSpec(rule="fedavg")}),
        data=plan.data,
        max_samples=plan.max_samples,
        fetch_timeout=60.0,
    )
    for name in names:
        fed.spawn_peer(name)
    wait_task_done(fed, rounds=ROUNDS, timeout=600.0)
    wait_peers_exit(fed, timeout=180.0)

    assert fed.deployer is not None
    client = fed.deployer
    address_of = {h.name: h.identity.address.lower() for h in fed.hospitals}
    with KuboContentStore(fed.hospitals[0].kubo.api_multiaddr) as store:
        global_cid = fed.model_cid
        for round_no in range(1, ROUNDS + 1):
            assert round_status(fed, round_no) is RoundStatus.FINALIZED
            global_model = np_load(store.get(global_cid, timeout=60))
            submissions = client.submissions(fed.task_id, round_no)
            assert {s.member.lower() for s in submissions} == set(address_of.values())
            updates = {}
            for sub in submissions:
                cid = cid_from_bytes(sub.cid)
                assert digest_of_cid(cid) == sub.digest
                updates[sub.member.lower()] = (sub.digest, np_load(store.get(cid, timeout=60)))
                assert sub.num_samples > 1000  # the plan's cap does not clip a HAPT group

            lacking = updates[address_of[no_gyro]][1]
            gyro = [k for k in global_model if ".gyro." in f".{k}." or k.startswith("gyro")]
            acc = [k for k in global_model if ".acc." in f".{k}." or k.startswith("acc")]
            assert gyro and acc, sorted(global_model)
            for key in gyro:
                assert np.array_equal(lacking[key], global_model[key]), key
            assert any(not np.array_equal(lacking[k], global_model[k]) for k in acc)
            full = updates[address_of[names[0]]][1]
            assert any(not np.array_equal(full[k], global_model[k]) for k in gyro)

            # Aggregation order is canonical: by update digest, whatever the chain order.
            in_order = [updates[m] for m in sorted(updates, key=lambda m: updates[m][0])]
            samples = {s.member.lower(): s.num_samples for s in submissions}
            by_digest = sorted(samples, key=lambda m: updates[m][0])
            expected = independent_weighted_mean(
                [(w, samples[m]) for m, (_, w) in zip(by_digest, in_order, strict=True)]
            )
            event = client.finalized_event(fed.task_id, round_no)
            global_cid = cid_from_bytes(event.aggregate_cid)
            assert store.get(global_cid, timeout=60) == expected, f"round {round_no}"

    for h in fed.hospitals:
        history = [
            json.loads(x) for x in (h.home / "state" / "history.jsonl").read_text().splitlines()
        ]
        assert [e["round"] for e in history] == [1, 2]
        assert all(not e["left_out"] for e in history), history
        macro_f1 = history[-1]["local_test"]["macro_f1"]
        assert 0.0 < macro_f1 <= 1.0
