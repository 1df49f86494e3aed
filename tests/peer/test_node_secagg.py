"""Secure aggregation in the peer node, on in-memory backends (chain, content, gossip).

The same node code runs in the peer processes of tests/e2e/test_secure_aggregation.py; here the
rounds are fast enough to check every aggregate bit for bit and the dropout cases.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from consensus.protocol import RoundStatus, round_ended
from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import fixed_point_fedavg
from consensus.secagg.state import apply_change, change_of
from consensus.secagg.wire import MASKED_MAGIC, masked_from_bytes
from consensus.serialization import bundle_from_bytes
from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from fedchain.simulator.federation import TaskTiming, VirtualFederation
from peer.claims import scores_root_and_claim
from peer.content.cid import cid_from_bytes
from peer.node import PeerNode
from peer.round_state import StateDict
from peer.secure_aggregation import capped_scores
from tests.peer.test_node import NAMES, TinyLearner, tiny_spec

CLIP = 1.5


def secure_spec() -> TaskSpec:
    return TaskSpec.model_validate(
        {**tiny_spec("fedavg").model_dump(), "secure_aggregation": {"clip_norm": CLIP}}
    )


def federation(tmp_path: Path, rounds: int, spec: TaskSpec | None = None) -> VirtualFederation:
    samples = {"a": 10, "b": 20, "c": 30, "d": 40}
    fed = VirtualFederation(
        tmp_path,
        spec or secure_spec(),
        {n: TinyLearner(n, samples[n]) for n in NAMES},
        TinyLearner("init").reference_weights(),
        TaskTiming(rounds=rounds),
    )
    fed.start_all()
    return fed


def aggregate_of(fed: VirtualFederation, round_no: int) -> StateDict:
    cid = cid_from_bytes(fed.deployer.finalized_event(fed.task_id, round_no).aggregate_cid)
    data = fed.peers["a"].content.get(cid, timeout=5)
    reference = TinyLearner("init").reference_weights()
    return bundle_from_bytes(data, reference=reference, state_reference={})[0]


def test_rounds_finalize_to_fixed_point_fedavg_of_the_members_updates(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=2)
    fed.run()
    assert fed.task_complete()
    fp = FixedPoint(CLIP)
    previous = TinyLearner("init").reference_weights()
    for round_no in (1, 2):
        learners = {n: fed.peers[n].learner for n in NAMES}
        changes = [change_of(learners[n].train(previous, round_no), previous) for n in NAMES]
        expected = fixed_point_fedavg(fp, changes, [learners[n].num_samples for n in NAMES])
        want = apply_change(previous, expected.mean_change)
        got = aggregate_of(fed, round_no)
        assert all(torch.equal(got[k], want[k]) for k in want), round_no
        attested = fed.deployer.attestations(fed.task_id, round_no)
        assert len(attested) >= 3 and len({a.aggregate_digest for a in attested}) == 1
        # Credit by sample count alone: the chain's scores root commits to exactly that.
        subs = fed.deployer.submissions(fed.task_id, round_no)
        cap = fed.deployer.task(fed.task_id).max_samples
        sent = {fed.peers[n].identity.address: learners[n].num_samples for n in NAMES}
        assert {s.member: s.num_samples for s in subs} == sent
        root, _ = scores_root_and_claim(fed.task_id, round_no, "", capped_scores(subs, cap))
        assert fed.deployer.round_info(fed.task_id, round_no).scores_digest == root
        previous = got


def test_a_stored_update_is_masked_noise(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=1)
    fed.run()
    sub = fed.deployer.submissions(fed.task_id, 1)[0]
    data = fed.peers["b"].content.get(cid_from_bytes(sub.cid), timeout=5)
    assert data.startswith(MASKED_MAGIC)
    values = masked_from_bytes(data, parameters=5)
    # the count and the change are hidden: nothing near the small integers they encode
    assert all(min(int(v), 2**64 - int(v)) > 2**40 for v in values)


def test_a_member_killed_after_submitting_does_not_stop_the_round(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=1)
    d = fed.peers["d"].identity.address
    fed.run(until=lambda: fed.deployer.submission_of(fed.task_id, 1, d)[0] != bytes(32))
    fed.crash("d")
    fed.run(until=lambda: fed.deployer.task(fed.task_id).completed)
    assert fed.deployer.round_info(fed.task_id, 1).status is RoundStatus.FINALIZED
    attesters = {a.member for a in fed.deployer.attestations(fed.task_id, 1)}
    assert d not in attesters and len(attesters) == 3
    assert len(fed.deployer.submissions(fed.task_id, 1)) == 4  # d's masks cancel in the sum


def test_a_member_that_never_submitted_is_unmasked_by_the_others_reveals(
    tmp_path: Path,
) -> None:
    """d is expected (eligible at open) but never submits: a, b and c reveal their seeds with
    d over gossip, and the round finalizes to fixed-point FedAvg of their three updates."""
    fed = federation(tmp_path, rounds=1)
    fed.crash("d")
    fed.run(until=lambda: round_ended(fed.deployer.round_info(fed.task_id, 1).status))
    assert fed.deployer.round_info(fed.task_id, 1).status is RoundStatus.FINALIZED
    live = ["a", "b", "c"]
    previous = TinyLearner("init").reference_weights()
    learners = {n: fed.peers[n].learner for n in live}
    changes = [change_of(learners[n].train(previous, 1), previous) for n in live]
    counts = [learners[n].num_samples for n in live]
    want = apply_change(previous, fixed_point_fedavg(FixedPoint(CLIP), changes, counts).mean_change)
    got = aggregate_of(fed, 1)
    assert all(torch.equal(got[k], want[k]) for k in want)
    attested = fed.deployer.attestations(fed.task_id, 1)
    assert len(attested) == 3 and len({a.aggregate_digest for a in attested}) == 1


def test_a_submitter_that_never_reveals_makes_the_round_fail_at_its_deadline(
    tmp_path: Path,
) -> None:
    """d never submits and c dies after submitting, before it could reveal: c's seeds with d
    are missing, so nobody attests a sum d's masks still cover, and the round fails."""
    fed = federation(tmp_path, rounds=1)
    fed.crash("d")
    c = fed.peers["c"].identity.address
    fed.run(until=lambda: fed.deployer.submission_of(fed.task_id, 1, c)[0] != bytes(32))
    fed.crash("c")
    fed.run(until=lambda: round_ended(fed.deployer.round_info(fed.task_id, 1).status))
    assert fed.deployer.round_info(fed.task_id, 1).status is RoundStatus.FAILED
    assert len(fed.deployer.submissions(fed.task_id, 1)) == 3
    assert fed.deployer.attestations(fed.task_id, 1) == []


def test_a_member_without_its_encryption_key_refuses_at_start(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=1)
    peer = fed.peers["a"]
    with pytest.raises(ConfigError, match="encryption_keystore"):
        PeerNode(
            cfg=fed.config(peer),
            identity=peer.identity,
            ledger=peer.ledger,
            content=peer.content,
            gossip=None,
            spec=fed.spec,
            learner=peer.learner,
        )
    assert fed.deployer.submissions(fed.task_id, 1) == []  # nothing was sent
