"""A member floods bad announcements: the first honest peer refuses them and relays none.

Three gossip processes in a line, A - B - C (C knows only B), each validating
announcements against the same static membership table (the chain's role; the
table keeps these process tests free of a chain, and ``test_validation.py``
covers the lookups themselves).  A is a member whose node publishes whatever
bytes the test gives it.  Everything C gets, or refuses, has been relayed by B.
"""

from __future__ import annotations

import json
import os
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Any

from eth_account import Account

from peer.announcements import Domain, RejectReason, sign_update
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from tests.peer.gossip.conftest import STARTUP_TIMEOUT
from tests.peer.gossip.test_processes import close_cleanly, node_args

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
DOMAIN = Domain(chain_id=31337, contract="0x" + "11" * 20)
TASK = 1
PER_KIND = 20  # bad announcements of each kind
VALID = 10  # valid announcements from A, interleaved with the flood
SUMMARY = re.compile(r"gossip: (\d+) messages rejected in the last 1 s")


def announcement(account: Any, domain: Domain = DOMAIN, task: int = TASK, round_no: int = 1) -> str:
    ann = sign_update(account, domain, task_id=task, round_no=round_no, cid=CID, num_samples=10)
    return ann.to_bytes().hex()


def forged_announcement(member: Any, signer: Any, round_no: int) -> str:
    """An announcement naming ``member`` but signed by ``signer``."""
    ann = json.loads(bytes.fromhex(announcement(signer, round_no=round_no)))
    ann["member"] = member.address
    return json.dumps(ann).encode().hex()


def test_flood_is_refused_by_the_first_peer_and_valid_announcements_still_pass(
    spawn: Any, tmp_path: Path
) -> None:
    seeds = {name: generate_ed25519_seed() for name in "ABC"}
    accounts = {name: Account.create() for name in "ABCD"}
    outsider = Account.create()
    # D is a member whose registered peer ID belongs to a host that never runs.
    peer_ids = {name: peer_id_from_seed(seed) for name, seed in seeds.items()}
    peer_ids["D"] = peer_id_from_seed(generate_ed25519_seed())
    members_file = tmp_path / "members.json"
    members_file.write_text(
        json.dumps(
            {
                "chain_id": DOMAIN.chain_id,
                "contract": DOMAIN.contract,
                "task_id": TASK,
                "members": {accounts[n].address: peer_ids[n] for n in "ABCD"},
            }
        )
    )
    extra = ["--members", str(members_file), "--stats-interval", "1"]

    b = spawn(*node_args(seeds["B"]), *extra)
    b_addr = b.expect("ready", STARTUP_TIMEOUT)["addrs"][0]
    a = spawn(*node_args(seeds["A"], b_addr), *extra)
    c = spawn(*node_args(seeds["C"], b_addr), *extra)
    a.expect("ready", STARTUP_TIMEOUT)
    c.expect("ready", STARTUP_TIMEOUT)
    assert b.request("peers", 40, cmd="wait_peers", n=2, timeout=30)["peers"] == sorted(
        [peer_ids["A"], peer_ids["C"]]
    )
    assert c.request("peers", 40, cmd="wait_peers", n=1, timeout=30)["peers"] == [peer_ids["B"]]
    assert a.request("peers", 40, cmd="wait_peers", n=1, timeout=30)["peers"] == [peer_ids["B"]]

    member_a = accounts["A"]
    bad_kinds: dict[RejectReason, Any] = {
        RejectReason.MALFORMED: lambda i: os.urandom(64 + i).hex(),
        RejectReason.TOO_LARGE: lambda i: (b"{" + b" " * 5000 + b"}").hex(),
        # signed by someone else than the member it names
        RejectReason.BAD_SIGNATURE: lambda i: forged_announcement(member_a, outsider, i + 1),
        RejectReason.NON_MEMBER: lambda i: announcement(outsider, round_no=i + 1),
        # a member's announcement, but sent from A's host instead of D's registered one
        RejectReason.WRONG_PEER_ID: lambda i: announcement(accounts["D"], round_no=i + 1),
        RejectReason.WRONG_TASK: lambda i: announcement(member_a, task=TASK + 1, round_no=i + 1),
    }
    # Signed by A for another federation: its signature does not verify for ours.
    other_domain = Domain(chain_id=DOMAIN.chain_id, contract="0x" + "22" * 20)
    wrong_domain = [announcement(member_a, other_domain, round_no=i + 1) for i in range(PER_KIND)]
    flood = [make(i) for i in range(PER_KIND) for make in bad_kinds.values()] + wrong_domain
    valid = [announcement(member_a, round_no=1000 + i) for i in range(VALID)]
    step = len(flood) // VALID
    payloads: list[str] = []
    for index in range(VALID):
        payloads += [*flood[index * step : (index + 1) * step], valid[index]]
    payloads += flood[VALID * step :]

    # Warm-up: one valid announcement end to end, so the mesh A-B-C carries the rest.
    warm_up = announcement(member_a, round_no=999)
    a.request("published", 30, cmd="publish_hex", payloads=[warm_up])
    warmed = c.request("received", 60, cmd="collect", count=1, timeout=45)["messages"]
    assert [m["data_hex"] for m in warmed] == [warm_up]

    published = a.request("published", 120, cmd="publish_hex", payloads=payloads)
    assert len(published["sent"]) == len(payloads)
    sent_at = dict(zip(payloads, published["sent"], strict=True))

    received = c.request("received", 90, cmd="collect", count=VALID, timeout=60)["messages"]
    # Every valid announcement crossed B, byte-exact, from A, parsed by C's validator.
    assert sorted(m["data_hex"] for m in received) == sorted(valid)
    assert {m["sender"] for m in received} == {peer_ids["A"]}
    assert {m["validated"] for m in received} == {"UpdateAnnouncement"}
    latencies = sorted(m["received"] - sent_at[m["data_hex"]] for m in received)
    print(
        f"\nflood of {len(flood)} bad + {VALID} valid announcements from A: A published in "
        f"{published['seconds']:.2f} s; C got {len(received)}/{VALID} valid, A->C latency "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, max {latencies[-1] * 1000:.0f} ms"
    )

    expected = Counter({reason: PER_KIND for reason in bad_kinds})
    expected[RejectReason.BAD_SIGNATURE] += len(wrong_domain)
    b_stats = wait_for_stats(b, lambda s: sum(s["rejected"].values()) >= len(flood))
    assert b_stats["rejected"] == {str(r): n for r, n in expected.items()}, b_stats
    assert b_stats["accepted"] == VALID + 1
    assert (b_stats["inbox_dropped"], b_stats["outbound_dropped"]) == (0, 0), b_stats
    # C never saw a bad one: B relayed none (C's own validator would have counted it).
    c_stats = c.request("stats", 10, cmd="stats")
    assert (c_stats["accepted"], c_stats["rejected"]) == (VALID + 1, {}), c_stats
    # B summarised the flood at INFO (1 s windows here) instead of a line per message.
    summarised = wait_for_summaries(b, len(flood))
    assert summarised == len(flood), b.stderr_tail()
    assert "refused a gossip message" not in b.stderr_tail(1_000_000), "DEBUG only"

    print(f"B RSS {b_stats['rss_mb']:.0f} MB (peak {b_stats['max_rss_mb']:.0f} MB)")
    for peer in (a, b, c):
        close_cleanly(peer)


def wait_for_stats(peer: Any, done: Any, deadline_polls: int = 120) -> dict[str, Any]:
    """Poll the peer's counters (0.5 s apart) until ``done(stats)`` or the polls run out."""
    stats: dict[str, Any] = {}
    for _ in range(deadline_polls):
        stats = peer.request("stats", 10, cmd="stats")
        if done(stats):
            break
        peer.request("peers", 10, cmd="wait_peers", n=99, timeout=0.5)  # a 0.5 s pause
    return stats


def wait_for_summaries(peer: Any, total: int, deadline_polls: int = 60) -> int:
    """Rejections counted in the peer's INFO summaries, polled 0.5 s apart until ``total``."""
    counted = 0
    for _ in range(deadline_polls):
        lines = SUMMARY.findall(peer.stderr_tail(1_000_000))
        counted = sum(int(n) for n in lines)
        if counted >= total:
            break
        peer.request("peers", 10, cmd="wait_peers", n=99, timeout=0.5)
    return counted
