"""Members-only weights with real parts: Anvil, one Kubo per hospital, peer processes.

A Kubo node in the private swarm (it holds the swarm key) but with no member key fetches an
update and sees only ciphertext; a member removed by governance while round 1 runs is a
recipient of round 1 but cannot open round 2's aggregate or updates; the remaining peers
finalize with one agreed CID, and the audit key replays every round to it.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest
from safetensors import SafetensorError
from safetensors.torch import load as st_load

from fedchain.localnet.devnet import find_ipfs
from fedchain.localnet.kubo_daemon import KuboDaemon
from fedchain.localnet.procs import free_port
from fedchain.replay import Replayer
from peer.confidential.envelope import NotARecipient, is_sealed, open_envelope, parse
from peer.content.cid import cid_from_bytes
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient
from peer.ledger.types import ProposalKind
from tests.e2e.conftest import SPEC, wait_peers_exit, wait_task_done
from tests.e2e.test_governance import ROUND_DURATION, wait_submissions

pytestmark = pytest.mark.e2e

MEMBERS_ONLY = SPEC.model_copy(update={"confidentiality": "members", "name": "heart-sealed"})


def test_outsiders_and_removed_members_read_only_ciphertext(
    federation_factory, tmp_path: Path
) -> None:
    names = ["cleveland", "hungary", "va"]
    fed = federation_factory(
        names, rounds=2, quorum=2, round_duration=ROUND_DURATION, spec=MEMBERS_ONLY
    )
    assert fed.w3 is not None and fed.deployer is not None and fed.chain is not None
    a, b, c = (
        FederationClient(fed.w3, fed.deployer.address, h.identity.account) for h in fed.hospitals
    )
    # va is removed while round 1 runs: a recipient of round 1, not of round 2.
    b.approve(a.propose(ProposalKind.REMOVE, c.account.address))
    for name in names[:2]:
        fed.spawn_peer(name)
    wait_submissions(fed, 1, 2, timeout=300)
    fed.chain.time_advance(ROUND_DURATION + 1)
    b.close_updates(fed.task_id, 1)
    wait_task_done(fed, rounds=2)
    wait_peers_exit(fed)

    # An outsider's Kubo in the private swarm fetches an update: ciphertext only.
    swarm_key = (fed.hospitals[0].kubo.repo / "swarm.key").read_bytes()
    outsider = KuboDaemon(
        find_ipfs(),
        tmp_path / "outsider-ipfs",
        api_port=free_port(),
        swarm_port=free_port(),
        swarm_key=swarm_key,
    )
    outsider.init()
    with outsider, KuboContentStore(outsider.api_multiaddr) as store:
        store.connect(fed.hospitals[0].kubo.swarm_multiaddr)
        update = a.submissions(fed.task_id, 1)[0]
        data = store.get(cid_from_bytes(update.cid), timeout=30)
        assert is_sealed(data)
        with pytest.raises(SafetensorError):
            st_load(data)
        body = parse(data).body
        assert b"dtype" not in data and b"F32" not in data  # no safetensors header inside
        assert len(zlib.compress(body, 9)) >= len(body)  # random-looking: incompressible
        with pytest.raises(NotARecipient):
            open_envelope(data, fed.audit_secret()[::-1])  # a key that is no recipient's

        # The removed member: round 1 was sealed to it, round 2 (opened after) was not.
        va_key = fed.encryption_secret("va")
        r1, r2 = (fed.deployer.finalized_event(fed.task_id, r).aggregate_cid for r in (1, 2))
        assert st_load(open_envelope(store.get(cid_from_bytes(r1), timeout=30), va_key))
        with pytest.raises(NotARecipient):
            open_envelope(store.get(cid_from_bytes(r2), timeout=30), va_key)
        for sub in a.submissions(fed.task_id, 2):
            with pytest.raises(NotARecipient):
                open_envelope(store.get(cid_from_bytes(sub.cid), timeout=30), va_key)

        # The auditor's key recomputes every aggregate, sealed to the CID the peers agreed.
        replayed = Replayer(
            fed.deployer, store, fed.task_id, timeout=30, audit_secret=fed.audit_secret()
        ).replay_all()
        assert [r.round for r in replayed] == [1, 2]
        assert all(r.ok and not r.left_out for r in replayed), replayed
