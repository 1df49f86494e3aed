"""Secure aggregation with real parts: Anvil, one Kubo per hospital, four peer processes.

The test plays an auditor that may also read each peer's own unmasked change (kept in its state
folder only because the test sets FEDCHAIN_SECAGG_KEEP_PLAIN; never published): the agreed
aggregate must equal fixed-point FedAvg of those changes bit for bit, while each masked update
fetched from Kubo is uniform noise mod 2**64 and its plain fixed-point encoding is not.  The
auditor's replay (``Replayer`` and ``fedchain replay``) confirms every round from the chain and
Kubo alone, including a round unmasked with the reveals its aggregate records.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from safetensors.torch import load as st_load

from consensus.protocol import RoundStatus
from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import encode_with_weight, fixed_point_fedavg
from consensus.secagg.state import apply_change
from consensus.secagg.wire import MASKED_MAGIC
from consensus.serialization import header_notes
from consensus.task_spec import ModelSpec, SecureAggregationSettings
from fedchain.localnet.devnet import LocalFederation
from fedchain.replay import Replayer
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from peer.ledger.types import Submission
from peer.secure_aggregation import KEEP_PLAIN_ENV, recorded_reveals
from tests.consensus.test_secagg import _uniform_p_values
from tests.e2e.conftest import SPEC, round_status, wait_peers_exit, wait_task_done
from tests.fedchain.test_consortium_cli import cli

pytestmark = pytest.mark.e2e

CLIP = 5.0
NAMES = ["cleveland", "hungary", "switzerland", "va"]
SECURE = SPEC.model_copy(
    update={
        "name": "heart-secagg",
        # an MLP: a few thousand parameters, enough values for a uniformity test per update
        "model": ModelSpec(arch="mlp", kwargs=dict(SPEC.model.kwargs)),
        "secure_aggregation": SecureAggregationSettings(clip_norm=CLIP),
    }
)
KEEP = {KEEP_PLAIN_ENV: "1"}


def plain_change(fed: LocalFederation, name: str, round_no: int) -> np.ndarray:
    path = fed.hospital(name).home / "state" / "secagg-plain" / f"round-{round_no}.npy"
    return np.load(path, allow_pickle=False)


def run_peers(fed: LocalFederation, names: list[str], rounds: int) -> None:
    """Run ``names``' peers (keeping their plain changes) until the task is done and they left."""
    for name in names:
        fed.spawn_peer(name, extra_env=KEEP)
    wait_task_done(fed, rounds=rounds, timeout=150)
    wait_peers_exit(fed)


def assert_fixed_point_fedavg(
    fed: LocalFederation, store: KuboContentStore, round_no: int
) -> list[Submission]:
    """The finalized aggregate of ``round_no`` is fixed-point FedAvg of the submitters' own
    changes, bit for bit, and every attestation names it; returns the round's submissions."""
    client = fed.deployer
    assert client is not None
    assert round_status(fed, round_no) is RoundStatus.FINALIZED
    info = client.round_info(fed.task_id, round_no)
    previous = st_load(store.get(client.model_cid(fed.task_id, info.model_digest), timeout=30))
    aggregate = st_load(
        store.get(
            cid_from_bytes(client.finalized_event(fed.task_id, round_no).aggregate_cid), timeout=30
        )
    )
    address = {h.identity.address.lower(): h.name for h in fed.hospitals}
    subs = client.submissions(fed.task_id, round_no)
    changes = [plain_change(fed, address[s.member.lower()], round_no) for s in subs]
    mean = fixed_point_fedavg(FixedPoint(CLIP), changes, [s.num_samples for s in subs])
    expected = apply_change(previous, mean.mean_change)
    assert sorted(aggregate) == sorted(expected)
    assert all(torch.equal(aggregate[k], expected[k]) for k in expected), round_no
    attested = client.attestations(fed.task_id, round_no)
    assert len({a.aggregate_digest for a in attested}) == 1
    assert {a.member for a in attested} <= {s.member for s in subs}
    return subs


def test_four_peers_finalize_fixed_point_fedavg_of_masked_updates(federation_factory) -> None:
    fed = federation_factory(NAMES, rounds=2, quorum=4, spec=SECURE)
    run_peers(fed, NAMES, rounds=2)
    client = fed.deployer
    assert client is not None
    fp = FixedPoint(CLIP)
    address = {h.identity.address.lower(): h.name for h in fed.hospitals}
    with KuboContentStore(fed.hospitals[0].kubo.api_multiaddr) as store:
        for round_no in (1, 2):
            subs = assert_fixed_point_fedavg(fed, store, round_no)
            assert len(subs) == 4
            changes = [plain_change(fed, address[s.member.lower()], round_no) for s in subs]
            counts = [s.num_samples for s in subs]
            attested = client.attestations(fed.task_id, round_no)
            assert len(attested) == 4 and len({a.aggregate_digest for a in attested}) == 1

            # Each stored update alone is noise; its plain encoding is far from it.
            for sub, change, n in zip(subs, changes, counts, strict=True):
                data = store.get(cid_from_bytes(sub.cid), timeout=30)
                assert data.startswith(MASKED_MAGIC)
                masked = np.frombuffer(data[len(MASKED_MAGIC) :], dtype="<u8").astype(np.uint64)
                chi, ks = _uniform_p_values(masked)
                assert chi > 1e-4 and ks > 1e-4, (sub.member, chi, ks)
                chi_plain, ks_plain = _uniform_p_values(encode_with_weight(fp, change, n))
                assert chi_plain < 1e-9 and ks_plain < 1e-9

        # The auditor re-derives both rounds; nobody dropped out, so nothing extra is recorded.
        replayed = Replayer(client, store, fed.task_id, timeout=30).replay_all()
        assert [r.round for r in replayed] == [1, 2]
        assert all(r.ok and len(r.scores) == 4 for r in replayed), replayed
        for round_no in (1, 2):
            agreed = client.finalized_event(fed.task_id, round_no).aggregate_cid
            assert header_notes(store.get(cid_from_bytes(agreed), timeout=30)) == {}


def test_a_member_killed_after_submitting_does_not_stop_the_round(federation_factory) -> None:
    fed = federation_factory(NAMES, rounds=1, quorum=3, spec=SECURE)
    client = fed.deployer
    assert client is not None
    va = fed.hospital("va").identity.address
    # va alone first: it trains, masks toward all four and submits, then it is killed.
    fed.spawn_peer("va")
    deadline = time.monotonic() + 60
    while client.submission_of(fed.task_id, 1, va)[0] == bytes(32):
        assert time.monotonic() < deadline, fed.peers["va"].log_tail(40)
        time.sleep(0.05)
    fed.peers.pop("va").stop(timeout=0)
    for name in NAMES[:3]:
        fed.spawn_peer(name)
    wait_task_done(fed, rounds=1, timeout=120)
    wait_peers_exit(fed)
    assert round_status(fed, 1) is RoundStatus.FINALIZED
    assert len(client.submissions(fed.task_id, 1)) == 4  # va's masks are in the closed set
    attesters = {a.member.lower() for a in client.attestations(fed.task_id, 1)}
    assert va.lower() not in attesters and len(attesters) == 3


def test_a_member_that_never_submits_is_unmasked_by_the_others_reveals(
    federation_factory,
) -> None:
    """va is eligible when round 1 opens (its key is on the chain, so every member masks toward
    it) but its peer never runs.  After the submit deadline the three others close the set,
    reveal their pair seeds with va over gossip (checked against the closed set before relay),
    wait for each other's reveals, unmask, and finalize fixed-point FedAvg of their updates."""
    fed = federation_factory(
        NAMES, rounds=1, quorum=3, spec=SECURE, round_duration=70, attest_duration=60
    )
    live = NAMES[:3]
    run_peers(fed, live, rounds=1)
    client = fed.deployer
    assert client is not None
    va = fed.hospital("va").identity.address.lower()
    with KuboContentStore(fed.hospitals[0].kubo.api_multiaddr) as store:
        subs = assert_fixed_point_fedavg(fed, store, 1)
        agreed = store.get(
            cid_from_bytes(client.finalized_event(fed.task_id, 1).aggregate_cid), timeout=30
        )
    assert len(subs) == 3 and va not in {s.member.lower() for s in subs}
    # The aggregate records each submitter's seed with va, so the auditor can replay it later.
    reveals = recorded_reveals(agreed, fed.task_id, 1)
    assert {(r.revealer, r.dropped) for r in reveals} == {(s.member.lower(), va) for s in subs}
    kubo = fed.hospitals[0].kubo.api_multiaddr  # a live peer's: it holds the round's content
    audited = cli("replay", "--rpc-url", fed.chain.rpc_url, "--contract", client.address,
                  "--task", str(fed.task_id), "--ipfs-api", kubo)  # fmt: skip
    assert audited.returncode == 0, audited.stderr
    assert "1 finalized rounds replay" in audited.stdout and "DIFFER" not in audited.stdout
    assert len(client.attestations(fed.task_id, 1)) == 3
    # The first peer to reach the closed round had nobody's reveals but its own: it waited.
    assert any("waiting for the reveal of" in fed.peers[n].log_tail(400) for n in live)
