"""Governance seen by running peers: a removed member is shut out, the rest carry on."""

from __future__ import annotations

import time

import pytest

from consensus.protocol import RoundStatus
from fedchain.localnet.devnet import LocalFederation
from peer.ledger.client import FederationClient
from peer.ledger.types import ProposalKind
from tests.e2e.conftest import wait_peers_exit, wait_task_done
from tests.e2e.test_rounds import audit_rounds

pytestmark = pytest.mark.e2e

ROUND_DURATION = 600
"""Far longer than any peer start-up: the test moves the chain's clock instead of waiting."""


def wait_submissions(fed: LocalFederation, round_no: int, count: int, timeout: float) -> None:
    """Poll the chain until ``count`` updates are in ``round_no`` (fail if a peer dies)."""
    assert fed.deployer is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = fed.deployer.round_info(fed.task_id, round_no)
        assert RoundStatus(info.status) is RoundStatus.COLLECTING, info
        if info.submissions >= count:
            return
        for name, proc in fed.peers.items():
            assert proc.returncode is None, f"peer {name} exited:\n{proc.log_tail(60)}"
        time.sleep(0.2)
    pytest.fail(f"round {round_no} did not get {count} updates within {timeout} s")


def test_removed_member_is_refused_and_the_rest_finish_the_round_it_left_open(
    federation_factory,
) -> None:
    names = ["cleveland", "hungary", "va"]
    fed = federation_factory(names, rounds=2, quorum=2, round_duration=ROUND_DURATION)
    assert fed.w3 is not None and fed.deployer is not None and fed.chain is not None
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
    # Round 1 opened with 3 eligible members; after the removal only 2 can submit, so its
    # update set can close only after its deadline, with the quorum (2) in.  However slowly
    # the peers start, both updates arrive long before a 600 s deadline; the chain's clock is
    # then moved past it, and a remaining member closes the set as any member may.
    wait_submissions(fed, 1, 2, timeout=300)
    assert fed.deployer.round_info(fed.task_id, 1).eligible == 3
    fed.chain.time_advance(ROUND_DURATION + 1)
    closer = FederationClient(fed.w3, fed.deployer.address, fed.hospitals[1].identity.account)
    closer.close_updates(fed.task_id, 1)
    # Round 2 opens with the 2 remaining members eligible: it closes as soon as both submit.
    wait_task_done(fed, rounds=2)
    honest = {h.identity.address.lower() for h in fed.hospitals[:2]}
    audit_rounds(fed, 2, honest=honest)
    wait_peers_exit(fed)
    assert [len(a.submissions(fed.task_id, r)) for r in (1, 2)] == [2, 2]
    assert fed.deployer.round_info(fed.task_id, 2).eligible == 2
