"""Two hostile members against three honest peer processes: nothing they send crashes, captures or
earns credit.

The test plays both hostile members itself with their own keys: each round they submit a crafted
update (huge finite weights, the global model sent back, an oversized object, a copy of an honest
update, all-zero weights, wrong shapes, NaN, garbage bytes, an unserved CID), claim more samples
than the task allows, and in round 1 both attest the same wrong aggregate under the smallest quorum
the contract allows.  Every honest peer must leave each crafted update out with its reason, agree
on the honest-only aggregate (checked independently with NumPy), stay up, and finish the task; the
agreed scores must hold the honest members only.
"""

from __future__ import annotations

import json
import secrets

import pytest

from consensus.protocol import RoundStatus
from fedchain.replay import Replayer
from peer.announcements import Domain, sign_update
from peer.content.cid import cid_from_bytes, cid_to_bytes
from peer.content.kubo import KuboContentStore
from peer.gossip.peer_id import generate_ed25519_seed
from peer.ledger.client import FederationClient
from peer.ledger.errors import SamplesAboveCap
from peer.ledger.events import DissentRecorded
from peer.startup import gossip_topic
from tests.e2e.conftest import SPEC, wait_peers_exit, wait_task_done
from tests.e2e.hostile import (
    HostileContent,
    peak_rss_kib,
    wait_first_submission,
    wait_round_status,
)
from tests.e2e.test_rounds import audit_rounds
from tests.peer.gossip.conftest import PeerProcess

pytestmark = pytest.mark.e2e

CAP = 200
OVERSIZE = 128 * 1024 * 1024
ROUNDS = 5
FLOOD = 150  # of each kind: garbage, and announcements from a host not registered for the signer

# What each hostile member submits per round, and a phrase of the reason honest peers record.
EXPECTED = {
    1: (("huge", "exceeds the task's bound"), ("free rider", "global model")),
    2: (("oversize", "bytes"), ("copy", "byte-identical")),
    3: (("zero", "every weight is zero"), ("shape", "the model expects")),
    4: (("nan", "NaN"), ("garbage", "safetensors")),
    5: (("unserved", "fetch"), ("garbage", "safetensors")),
}


def start_flooder(fed, tmp_path) -> PeerProcess:
    """A gossip host on the task's topic, connected to the first hospital's peer only."""
    assert fed.deployer is not None
    topic = gossip_topic(fed.deployer.chain_id, fed.deployer.address, fed.task_id)
    flooder = PeerProcess(
        [
            "node",
            "--seed",
            generate_ed25519_seed().hex(),
            "--topic",
            topic,
            "--bootstrap",
            fed.hospitals[0].gossip_addr,
        ],
        tmp_path / "flooder.stderr",
    )
    flooder.expect("ready", 120)
    peers = flooder.request("peers", 90, cmd="wait_peers", n=1, timeout=60)["peers"]
    assert peers, f"the flooder never joined the topic\n{flooder.stderr_tail()}"
    return flooder


def flood_payloads(fed) -> list[str]:
    assert fed.deployer is not None
    domain = Domain(chain_id=fed.deployer.chain_id, contract=fed.deployer.address)
    forged = [
        sign_update(
            fed.outsiders[0],
            domain,
            task_id=fed.task_id,
            round_no=2,
            cid=fed.model_cid,
            num_samples=i + 1,
        ).to_bytes()
        for i in range(FLOOD)
    ]
    garbage = [b"{not json " + secrets.token_bytes(32) for _ in range(FLOOD)]
    return [p.hex() for pair in zip(garbage, forged, strict=True) for p in pair]


def test_hostile_members_are_left_out_and_cannot_finalize(federation_factory, tmp_path) -> None:
    names = ["cleveland", "hungary", "va"]
    fed = federation_factory(
        names, rounds=ROUNDS, quorum=3, extra_members=2, fetch_timeout=4.0, max_samples=CAP
    )
    assert fed.w3 is not None and fed.deployer is not None
    task_id = fed.task_id
    a, b = (FederationClient(fed.w3, fed.deployer.address, acct) for acct in fed.outsiders)
    content = HostileContent(SPEC, fed.hospitals[0].kubo.api_multiaddr)
    for name in names:
        fed.spawn_peer(name)
    flooder = start_flooder(fed, tmp_path)
    rss_growth_kib: dict[str, int] = {}
    try:
        for round_no, ((kind_a, _), (kind_b, _)) in EXPECTED.items():
            wait_round_status(a, task_id, round_no, RoundStatus.COLLECTING)
            if round_no == 2:
                flooder.request("published", 120, cmd="publish_hex", payloads=flood_payloads(fed))
            if round_no == 1:
                with pytest.raises(SamplesAboveCap):
                    a.submit_update(task_id, 1, content.all_zero(), CAP + 1)
            before = {n: peak_rss_kib(p.pid or 0) for n, p in fed.peers.items()}
            cid_a = {
                "huge": content.huge_finite,
                "oversize": lambda: content.oversize(OVERSIZE),
                "zero": content.all_zero,
                "nan": content.nan,
                "unserved": content.unserved,
            }[kind_a]()
            a.submit_update(task_id, round_no, cid_a, CAP)
            if kind_b == "free rider":
                cid_b = cid_to_bytes(fed.model_cid)
            elif kind_b == "copy":
                cid_b = wait_first_submission(b, task_id, round_no)
            elif kind_b == "shape":
                cid_b = content.wrong_shape()
            else:
                cid_b = content.garbage()
            b.submit_update(task_id, round_no, cid_b, CAP)
            if round_no == 1:
                # Two colluders attest the same made-up aggregate at once: 2 of 5 members.
                wait_round_status(a, task_id, 1, RoundStatus.CLOSED)
                fake = cid_from_bytes(bytes([0x01, 0x55, 0x12, 0x20]) + secrets.token_bytes(32))
                root = secrets.token_bytes(32)
                for colluder in (a, b):
                    colluder.attest_aggregate(task_id, 1, cid_to_bytes(fake), root)
            if kind_a == "oversize":
                wait_round_status(a, task_id, round_no + 1, RoundStatus.COLLECTING)
                rss_growth_kib = {
                    n: peak_rss_kib(p.pid or 0) - before[n] for n, p in fed.peers.items()
                }
        wait_task_done(fed, rounds=ROUNDS)
    finally:
        content.close()
        flooder.stop()

    honest = {h.identity.address.lower() for h in fed.hospitals}
    audit_rounds(fed, ROUNDS, honest=honest)
    wait_peers_exit(fed)

    hostile = [acct.address for acct in fed.outsiders]
    client = fed.deployer
    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    try:
        replayer = Replayer(client, store, task_id)
        earned: dict[str, int] = {}
        for round_no, ((_, why_a), (_, why_b)) in EXPECTED.items():
            # An auditor re-derives the aggregate and the scores: the hostile updates are left
            # out, and only honest members hold a leaf.
            replayed = replayer.replay(round_no)
            assert replayed.ok, replayed
            assert {m.lower() for m, _ in replayed.scores} <= honest
            for member, score in replayed.scores:
                earned[member] = earned.get(member, 0) + score
            for h in fed.hospitals:
                lines = (h.home / "state" / "history.jsonl").read_text().splitlines()
                history = {e["round"]: e for e in map(json.loads, lines)}
                left_out = history[round_no]["left_out"]
                assert sorted(left_out) == sorted(hostile), (h.name, round_no, left_out)
                assert why_a in left_out[hostile[0]], left_out
                assert why_b in left_out[hostile[1]], left_out
                assert history[round_no]["agreed"] is True
    finally:
        store.close()
    # Round 1's colluding attestations did not finalize, and their dissent is on-chain.
    dissent = {e.member for e in client.events(DissentRecorded, task_id, 1)}
    assert dissent == set(hostile)
    for acct in fed.outsiders:
        assert client.contribution_of(acct.address) == 0
    for h in fed.hospitals:
        assert client.contribution_of(h.identity.address) == earned.get(h.identity.address, 0)
    assert sum(earned.values()) > 0
    # The flood reached the first hospital only and was refused there, before relay.
    last = {
        h.name: json.loads((h.home / "state" / "history.jsonl").read_text().splitlines()[-1])
        for h in fed.hospitals
    }
    first, *others = (h.name for h in fed.hospitals)
    assert sum(last[first]["gossip"]["rejected"].values()) == 2 * FLOOD, last[first]["gossip"]
    for name in others:
        assert last[name]["gossip"]["rejected"] == {}, (name, last[name]["gossip"])
    # The 128 MiB object was refused before download: no honest peer's peak memory grew by half.
    assert rss_growth_kib, "the oversize round was not measured"
    print(f"peak RSS growth of honest peers in the oversize round, KiB: {rss_growth_kib}")
    for name, growth in rss_growth_kib.items():
        assert growth < OVERSIZE // 2 // 1024, f"{name} peak RSS grew {growth} KiB"
