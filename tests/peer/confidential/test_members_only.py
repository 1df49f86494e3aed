"""Members-only weights through real PeerNodes on the in-memory backends: every update and
aggregate in the content store is sealed, the round still finalizes with one agreed CID, a
member removed by governance cannot open rounds opened after its removal, and the auditor's
key replays every round."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from fedchain.replay import Replayer
from fedchain.simulator.federation import TaskTiming, VirtualFederation
from peer.confidential.envelope import NotARecipient, is_sealed, open_envelope
from peer.confidential.seal import recipients_of_round
from peer.content.cid import cid_from_bytes
from tests.peer.test_node import NAMES, TinyLearner, aggregates, history

SPEC = {
    "name": "tiny",
    "task": "heart",
    "model": {"arch": "logreg", "kwargs": {"in_features": 4}},
    "training": {"epochs": 1, "lr": 0.1, "batch_size": 4, "seed": 0},
    "aggregation": "fedavg",
    "confidentiality": "members",
}


def _federation(tmp_path: Path, rounds: int, encoding: str = "none") -> VirtualFederation:
    fed = VirtualFederation(
        tmp_path,
        TaskSpec.model_validate({**SPEC, "encoding": encoding}),
        {n: TinyLearner(n) for n in NAMES},
        TinyLearner("init").reference_weights(),
        TaskTiming(rounds=rounds),
    )
    fed.start_all()
    return fed


def test_the_setting_leaves_plain_specs_unchanged() -> None:
    plain = {k: v for k, v in SPEC.items() if k != "confidentiality"}
    assert b"confidentiality" not in TaskSpec.model_validate(plain).to_bytes()
    assert b'"confidentiality":"members"' in TaskSpec.model_validate(SPEC).to_bytes()


@pytest.mark.parametrize("encoding", ["none", "int8"])
def test_sealed_rounds_finalize_and_an_outsider_reads_only_ciphertext(
    tmp_path: Path, encoding: str
) -> None:
    fed = _federation(tmp_path, rounds=2, encoding=encoding)
    fed.run()
    assert fed.task_complete() and len(aggregates(fed)) == 2
    for name in NAMES:
        assert not any(e["left_out"] for e in history(fed, name).values())
    outsider = fed.content_net.store("outsider")  # in the swarm, holding no member key
    outsider.connect(fed.peers["a"].content.address)
    stranger_key = fed.encryption_secret("stranger")
    for sub in fed.deployer.submissions(fed.task_id, 2):
        data = outsider.get(cid_from_bytes(sub.cid), timeout=1.0)
        assert is_sealed(data)
        with pytest.raises(SafetensorError):
            st_load(data)
        with pytest.raises(NotARecipient):
            open_envelope(data, stranger_key)
        assert st_load(open_envelope(data, fed.encryption_secret("b")))  # a member reads it
    final = cid_from_bytes(fed.deployer.finalized_event(fed.task_id, 2).aggregate_cid)
    assert is_sealed(outsider.get(final, timeout=1.0))


def test_a_removed_member_cannot_open_rounds_opened_after_its_removal(tmp_path: Path) -> None:
    fed = _federation(tmp_path, rounds=3)
    fed.run(until=lambda: fed.deployer.task(fed.task_id).finalized_rounds >= 1)
    fed.remove("d")  # round 2 is open already: d stays among its recipients
    fed.run()
    assert fed.task_complete()
    d_key = fed.encryption_secret("d")
    store = fed.peers["a"].content
    r2, r3 = (
        cid_from_bytes(fed.deployer.finalized_event(fed.task_id, r).aggregate_cid) for r in (2, 3)
    )
    open_envelope(store.get(r2, timeout=1.0), d_key)
    with pytest.raises(NotARecipient, match="not among the 4 recipients"):
        open_envelope(store.get(r3, timeout=1.0), d_key)
    assert len(recipients_of_round(fed.deployer, fed.task_id, 3)) == 3 + 1  # members + audit
    for sub in fed.deployer.submissions(fed.task_id, 3):
        with pytest.raises(NotARecipient):
            open_envelope(store.get(cid_from_bytes(sub.cid), timeout=1.0), d_key)


def test_the_audit_key_replays_every_round_and_no_key_cannot(tmp_path: Path) -> None:
    fed = _federation(tmp_path, rounds=2)
    fed.run()
    store = fed.peers["a"].content
    auditor = Replayer(fed.deployer, store, fed.task_id, timeout=1.0, audit_secret=fed.audit_secret)
    auditor.reference = TinyLearner("init").reference_weights()
    rounds = auditor.replay_all()
    assert [r.round for r in rounds] == [1, 2]
    assert all(r.ok and not r.left_out for r in rounds), rounds
    blind = Replayer(fed.deployer, store, fed.task_id, timeout=1.0)
    blind.reference = auditor.reference
    with pytest.raises(ConfigError, match=r"keys\.encryption_keystore"):
        blind.replay_all()
