"""Whole rounds through real peer processes, a real chain and one real Kubo per hospital.

The test plays an auditor: it trusts nothing the peers say about themselves, reads
the contract, fetches every update and aggregate from Kubo, and recomputes the
weighted mean with NumPy on its own, summing in the canonical order (by update
digest, not chain order).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from safetensors.numpy import load as np_load
from safetensors.numpy import save as np_save

from consensus.protocol import RoundStatus
from fedchain.localnet.devnet import LocalFederation
from peer.content.cid import cid_from_bytes, digest_of_cid
from peer.content.kubo import KuboContentStore
from tests.e2e.conftest import require_chain, round_status, wait_peers_exit, wait_task_done

pytestmark = pytest.mark.e2e


def independent_weighted_mean(updates: list[tuple[dict[str, np.ndarray], int]]) -> bytes:
    total = sum(n for _, n in updates)
    out: dict[str, np.ndarray] = {}
    for key in sorted(updates[0][0]):
        acc = np.zeros(updates[0][0][key].shape, dtype=np.float64)
        for weights, n in updates:
            acc = acc + weights[key].astype(np.float64) * float(n)
        out[key] = (acc / float(total)).astype(np.float32)
    return np_save(out)


def audit_rounds(fed: LocalFederation, rounds: int, *, honest: set[str]) -> list[dict[str, object]]:
    """Re-derive every finalized aggregate from the chain and Kubo alone."""
    assert fed.deployer is not None
    client = fed.deployer
    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    audited = []
    try:
        for round_no in range(1, rounds + 1):
            assert round_status(fed, round_no) is RoundStatus.FINALIZED
            event = client.finalized_event(fed.task_id, round_no)
            agg_cid = cid_from_bytes(event.aggregate_cid)
            agg_bytes = store.get(agg_cid, timeout=30)
            used = []
            subs = sorted(client.submissions(fed.task_id, round_no), key=lambda s: s.digest)
            for sub in subs:
                if sub.member.lower() not in honest:
                    continue
                cid = cid_from_bytes(sub.cid)
                assert digest_of_cid(cid) == sub.digest
                used.append((np_load(store.get(cid, timeout=30)), sub.num_samples))
            assert len(used) == len(honest)
            assert independent_weighted_mean(used) == agg_bytes, (
                f"round {round_no} aggregate differs"
            )
            attesters = [
                a for a in client.attestations(fed.task_id, round_no) if a.member.lower() in honest
            ]
            digests = {a.aggregate_digest for a in attesters}
            assert digests == {digest_of_cid(agg_cid)}, "honest peers attested different aggregates"
            assert len({a.member for a in attesters}) >= len(honest)
            if round_no < rounds:
                nxt = client.round_info(fed.task_id, round_no + 1)
                assert nxt.model_digest == digest_of_cid(agg_cid)
            audited.append({"round": round_no, "aggregate": agg_cid, "updates": len(used)})
    finally:
        store.close()
    return audited


@pytest.mark.parametrize("chain", ["anvil", "ganache", "geth"])
def test_three_hospitals_complete_two_rounds(federation_factory, chain: str) -> None:
    """On geth, blocks come every second: peers must wait for inclusion, not assume it."""
    require_chain(chain)
    names = ["cleveland", "hungary", "va"]
    # "va" gets no gossip link at all: the chain and IPFS alone must carry it through.
    fed = federation_factory(names, chain=chain, rounds=2, isolated=("va",))
    for name in names:
        fed.spawn_peer(name)
    wait_task_done(fed, rounds=2)
    honest = {h.identity.address.lower() for h in fed.hospitals}
    audited = audit_rounds(fed, 2, honest=honest)
    assert [a["updates"] for a in audited] == [3, 3]
    wait_peers_exit(fed)
    for h in fed.hospitals:
        history = [
            json.loads(x) for x in (h.home / "state" / "history.jsonl").read_text().splitlines()
        ]
        assert [e["round"] for e in history] == [1, 2]
        assert all(not e["left_out"] for e in history)
    # Each member claimed its credit for both rounds: its training-set size, twice.
    for h in fed.hospitals:
        assert fed.deployer is not None
        assert fed.deployer.credit_of(h.identity.address) > 0
