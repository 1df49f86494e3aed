"""A member whose on-chain update cannot be matched to valid content is left out by every peer."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from consensus.protocol import RoundStatus
from peer.content.cid import cid_from_bytes, cid_to_bytes
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient
from tests.e2e.conftest import wait_peers_exit, wait_task_done
from tests.e2e.test_rounds import audit_rounds

pytestmark = pytest.mark.e2e


def _wait_collecting(client: FederationClient, task_id: int, round_no: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        task = client.task(task_id)
        info = client.round_info(task_id, task.current_round)
        if task.current_round == round_no and RoundStatus(info.status) is RoundStatus.COLLECTING:
            return
        time.sleep(0.05)
    pytest.fail(f"round {round_no} never opened")


def test_update_not_matching_its_digest_is_left_out(federation_factory) -> None:
    names = ["cleveland", "hungary", "switzerland"]
    fed = federation_factory(names, rounds=2, quorum=3, extra_members=1, fetch_timeout=4.0)
    assert fed.w3 is not None and fed.deployer is not None
    hostile = FederationClient(fed.w3, fed.deployer.address, fed.outsiders[0])
    for name in names:
        fed.spawn_peer(name)
    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    # Round 1: content exists but is not a model; round 2: a digest no one can serve.
    garbage_cid = store.add(b"not a safetensors file " + secrets.token_bytes(64))
    missing_cid = cid_from_bytes(bytes([0x01, 0x55, 0x12, 0x20]) + secrets.token_bytes(32))
    store.close()
    for round_no, cid in ((1, garbage_cid), (2, missing_cid)):
        _wait_collecting(hostile, fed.task_id, round_no)
        hostile.submit_update(fed.task_id, round_no, cid_to_bytes(cid), 10_000)
    wait_task_done(fed, rounds=2)
    honest = {h.identity.address.lower() for h in fed.hospitals}
    audit_rounds(fed, 2, honest=honest)
    wait_peers_exit(fed)
    bad = fed.outsiders[0].address
    for h in fed.hospitals:
        history = [
            json.loads(x) for x in (h.home / "state" / "history.jsonl").read_text().splitlines()
        ]
        assert [sorted(e["left_out"]) for e in history] == [[bad], [bad]]
