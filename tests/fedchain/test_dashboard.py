"""The dashboard's snapshot on the contract's in-memory twin, and its server's token rule over
real HTTP (the page itself is tested in Chromium: tests/e2e/test_dashboard.py)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from contextlib import closing
from pathlib import Path

import pytest

from fedchain.errors import ConfigError
from fedchain.ops.dashboard.collect import Reading, snapshot_of
from fedchain.ops.dashboard.command import sources_from_options
from fedchain.ops.dashboard.server import COOKIE, DashboardServer, check_bind
from fedchain.ops.dashboard.snapshot import NEEDS_RECORDS, Snapshot, SourceState
from peer.content.cid import cid_from_bytes
from peer.records import History, HistoryWriter, RoundRecord
from tests.peer.ledger.conftest import HOUR, Fed, MemoryBackend, make_fed

GAS_PER_TX = 1_000
UP = SourceState("chain", True, "memory chain")


class MemoryFacts:
    """Block times from the memory chain; a fixed gas per transaction (the twin has no gas)."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend
        self.asked: list[str] = []

    def gas_used(self, tx_hash: str) -> int | None:
        self.asked.append(tx_hash)
        return GAS_PER_TX

    def block_time(self, block: int) -> int | None:
        return self.backend.block_time(block)


def _federation() -> tuple[Fed, MemoryBackend, int]:
    """Round 1 finalized and claimed by member 0, round 2 failed, round 3 collecting."""
    backend = MemoryBackend()
    fed = make_fed(backend)
    task = fed.new_task(rounds=3)
    fed.run_round(task, 1)
    fed.members[0].claim_contribution(task, 1, 100, fed.tree(task, 1, [0, 1, 2]).proof(0))
    fed.submit(task, 2, [1])
    backend.time_advance(HOUR + 1)
    fed.members[0].fail_round(task, 2)
    fed.submit(task, 3, [0, 2])
    return fed, backend, task


def _snapshot(fed: Fed, backend: MemoryBackend, records: Path | None = None) -> Snapshot:
    reading = Reading(
        ledger=fed.members[0],
        facts=MemoryFacts(backend),
        chain=UP,
        records=records,
        own_address=fed.members[0].account.address,
    )
    return snapshot_of(reading, mode="auditor", contract=fed.address)


def test_rounds_members_and_claims_match_the_chain() -> None:
    fed, backend, task = _federation()
    snap = _snapshot(fed, backend)
    addresses = [m.account.address for m in fed.members]

    assert [m.address for m in snap.members] == addresses
    assert [m.credit for m in snap.members] == [100, 0, 0]
    assert [m.last_update_round for m in snap.members] == [3, 2, 3]
    assert snap.members[0].own and not snap.members[1].own
    assert all(m.status == "member" and m.epsilon is None for m in snap.members)

    (view,) = snap.tasks
    assert (view.task_id, view.status, view.current_round, view.finalized_rounds) == (
        task,
        "active",
        3,
        1,
    )
    assert view.phase.startswith(f"task {task}, round 3: collecting updates (2/3")

    by_round = {r.round: r for r in snap.rounds}
    assert [by_round[r].status for r in (1, 2, 3)] == ["finalized", "failed", "collecting"]
    first = by_round[1]
    assert first.participants == tuple(addresses) and first.attestations == 3
    assert first.aggregate_cid == cid_from_bytes(fed.aggregate_cid(task, 1))
    # 3 updates + 3 attestations (the last finalizes) + 1 claim, each its own transaction
    assert first.gas == 7 * GAS_PER_TX and first.gas_per_participant == 7 * GAS_PER_TX // 3
    assert first.seconds == 0  # the memory chain's clock did not move during round 1
    assert by_round[2].seconds is not None and by_round[2].seconds >= HOUR
    assert by_round[2].participants == (addresses[1],) and by_round[2].aggregate_cid is None
    assert by_round[3].ended_at is None and by_round[3].seconds is None
    assert [(c.round, c.member, c.score) for c in snap.claims] == [(1, addresses[0], 100)]
    assert snap.records is None and snap.records_absent == NEEDS_RECORDS

    decoded = json.loads(snap.to_json())
    assert (
        decoded["rounds"][0]["gas"] == 7 * GAS_PER_TX and decoded["chain_id"] == fed.chain.chain_id
    )


def test_records_add_quality_left_out_updates_and_epsilon(tmp_path: Path) -> None:
    fed, backend, _ = _federation()
    other = fed.members[2].account.address
    writer = HistoryWriter(History(tmp_path))
    writer.round_finished(
        RoundRecord(
            round=1,
            status="finalized",
            left_out={other: "update norm above the band"},
            local_test={"accuracy": 0.75},
            epsilon=1.25,
        )
    )
    writer.round_finished(
        RoundRecord(round=2, status="failed", local_test={"accuracy": 0.8}, epsilon=2.5)
    )
    snap = _snapshot(fed, backend, records=tmp_path)

    assert snap.source("records").ok and snap.records_absent is None
    rec = snap.records
    assert rec is not None and rec.metric == "accuracy"
    (name,) = rec.own_test
    assert rec.own_test[name] == {1: 0.75, 2: 0.8}
    assert rec.epsilon[name] == {1: 1.25, 2: 2.5}
    assert [(x.round, x.member, x.outcome, x.why) for x in rec.left_out] == [
        (1, other, "left out", "update norm above the band")
    ]
    assert rec.local_only == {}
    # a peer's own records name its institution: the folder's
    assert [m.name for m in snap.members] == [name, None, None]
    json.loads(snap.to_json())


def test_a_peer_names_its_own_row_from_its_config_before_any_record(tmp_path: Path) -> None:
    fed, backend, _ = _federation()
    me = fed.members[1].account.address
    reading = Reading(
        ledger=fed.members[0],
        facts=MemoryFacts(backend),
        chain=UP,
        records=tmp_path / "state",  # the peer has not started yet
        own_address=me,
        own_name="hungary",
    )
    snap = snapshot_of(reading, mode="peer", contract=fed.address)
    assert [(m.name, m.own) for m in snap.members] == [
        (None, False),
        ("hungary", True),
        (None, False),
    ]


def test_missing_records_and_a_down_chain_are_shown_not_raised(tmp_path: Path) -> None:
    down = SourceState("chain", False, "the chain at http://127.0.0.1:1 does not answer")
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "record.json").write_text("[]")  # not a run record
    snap = snapshot_of(
        Reading(ledger=None, facts=None, chain=down, records=tmp_path / "nothing"),
        mode="peer",
        contract="0x" + "11" * 20,
    )
    assert not snap.source("chain").ok and snap.members == () and snap.block is None
    assert not snap.source("records").ok
    assert snap.records is None and snap.records_absent is not None
    assert snap.records_absent.startswith(NEEDS_RECORDS) and "nothing" in snap.records_absent
    json.loads(snap.to_json())

    empty = tmp_path / "state"
    empty.mkdir()
    (empty / "round-state.json").write_text("{}")  # a peer's other files, but no history yet
    early = snapshot_of(
        Reading(ledger=None, facts=None, chain=down, records=empty), mode="peer", contract="0x"
    )
    assert early.source("records").ok and early.records is None
    assert early.records_absent == f"no rounds recorded yet in {empty}"
    before = snapshot_of(
        Reading(ledger=None, facts=None, chain=down, records=tmp_path / "later"),
        mode="peer",
        contract="0x",
    )
    assert before.source("records").ok and "does not exist yet" in str(before.records_absent)


def test_options_name_a_peer_or_an_auditor_view() -> None:
    with pytest.raises(ConfigError, match="--rpc-url URL and --contract"):
        sources_from_options(None, "http://127.0.0.1:8545", None, None, None)
    with pytest.raises(ConfigError, match="not both"):
        sources_from_options(Path("x.toml"), "http://127.0.0.1:8545", None, None, None)
    auditor = sources_from_options(None, "http://127.0.0.1:8545", "0x" + "ab" * 20, None, None)
    assert auditor.mode == "auditor" and auditor.ipfs_api is None


def _get(url: str, cookie: str | None = None) -> tuple[int, bytes, str | None]:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read(), answer.headers.get("Set-Cookie")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), None


def _fixed() -> Snapshot:
    return Snapshot(taken_at=0.0, mode="auditor", contract="0x" + "22" * 20, sources=(UP,))


def test_beyond_loopback_needs_a_token() -> None:
    with pytest.raises(ConfigError, match=r"0\.0\.0\.0.*without a token"):
        check_bind("0.0.0.0", None)
    with pytest.raises(ConfigError, match="without a token"):
        DashboardServer(_fixed, host="0.0.0.0", port=0)
    check_bind("127.0.0.1", None)
    check_bind("::1", None)
    check_bind("localhost", None)


def test_requests_without_the_right_token_get_401() -> None:
    token = "right-token"
    with closing(DashboardServer(_fixed, host="0.0.0.0", port=0, token=token)) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert server.url == f"{base}/?token={token}"
        for path in ("/", "/api/snapshot", "/dashboard.js", "/api/snapshot?token=wrong"):
            status, body, _ = _get(base + path)
            assert status == 401, path
            assert b"token" in body and b"0x2222" not in body
        assert _get(base + "/api/snapshot", cookie=f"{COOKIE}=wrong")[0] == 401

        status, body, cookie = _get(server.url)
        assert status == 200 and b"fedchain dashboard" in body
        assert cookie is not None and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        status, body, _ = _get(base + "/api/snapshot", cookie=cookie.split(";")[0])
        assert status == 200 and json.loads(body)["contract"] == "0x" + "22" * 20


def test_loopback_serves_without_a_token() -> None:
    with closing(DashboardServer(_fixed, port=0)) as server:
        assert server.token is None and "token" not in server.url
        status, body, _ = _get(server.url + "api/snapshot")
        assert status == 200 and json.loads(body)["mode"] == "auditor"
        assert _get(server.url + "missing")[0] == 404
