"""Governance seen by running peers: a removed member is shut out, the rest carry on."""

from __future__ import annotations

import time

import pytest

from peer.ledger.client import FederationClient
from peer.ledger.types import ProposalKind
from tests.e2e.conftest import wait_peers_exit, wait_task_done
from tests.e2e.test_rounds import audit_rounds

pytestmark = pytest.mark.e2e


def test_removed_member_is_refused_and_the_rest_close_by_deadline(federation_factory) -> None:
    names = ["cleveland", "hungary", "va"]
    # Round 1 opened with 3 eligible members; after the removal only 2 can submit, so the
    # update set closes only when its deadline passes and a quorum (2) has submitted.
    fed = federation_factory(names, rounds=2, quorum=2, round_duration=25)
    assert fed.w3 is not None and fed.deployer is not None
    a, b, c = (
        FederationClient(fed.w3, fed.deployer.address, h.identity.account) for h in fed.hospitals
    )
    proposal = a.propose(ProposalKind.REMOVE, c.account.address)
    b.approve(proposal)
    assert not a.is_member(c.account.address)

    removed = fed.spawn_peer("va")
    deadline = time.monotonic() + 120
    while removed.returncode is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert removed.returncode == 2, removed.log_tail()
    assert "is not a member of the federation" in removed.log_tail()
    del fed.peers["va"]

    for name in names[:2]:
        fed.spawn_peer(name)
    wait_task_done(fed, rounds=2)
    honest = {h.identity.address.lower() for h in fed.hospitals[:2]}
    audit_rounds(fed, 2, honest=honest)
    wait_peers_exit(fed)
    assert [len(a.submissions(fed.task_id, r)) for r in (1, 2)] == [2, 2]
