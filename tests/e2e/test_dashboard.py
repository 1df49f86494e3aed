"""The dashboard in a real headless Chromium against real federations (Anvil, one Kubo per
hospital, peer processes): what the page shows is compared with what the chain says, the page
must change without a reload, and screenshots are kept under runs/test-artifacts/dashboard/.

Chromium comes from the project's own set-up (``make test`` runs scripts/install-chromium and
writes .fedchain/chromium-path); Playwright only drives it, it never downloads a browser.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from fedchain.checkout import SOURCE_ROOT
from fedchain.localnet.devnet import LocalFederation
from fedchain.ops.dashboard.collect import ROUND_EVENTS
from fedchain.ops.dashboard.command import RunningDashboard, start_dashboard
from fedchain.ops.dashboard.live import DashboardSources
from fedchain.ops.status import keystore_address
from peer.config import load_config
from peer.ledger.client import FederationClient
from peer.ledger.events import ContributionClaimed, RoundOpened
from tests.e2e.conftest import wait_peers_exit, wait_task_done
from tests.peer.ledger.conftest import cid_of

pytestmark = pytest.mark.e2e

ARTIFACTS = SOURCE_ROOT / "runs" / "test-artifacts" / "dashboard"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 120_000
HOSPITALS = ["cleveland", "hungary", "va"]


def chromium_path() -> Path:
    """The browser ``make test`` installed (or $FEDCHAIN_CHROMIUM); skip, saying why, if none."""
    chosen = os.environ.get("FEDCHAIN_CHROMIUM")
    record = SOURCE_ROOT / ".fedchain" / "chromium-path"
    if not chosen:
        if not record.is_file():
            pytest.skip(f"no {record}: run `make test` or scripts/install-chromium first")
        chosen = record.read_text(encoding="utf-8").strip()
    if chosen in ("", "none"):
        pytest.skip("scripts/install-chromium found no Chromium and could not install one")
    path = Path(chosen)
    if not os.access(path, os.X_OK):
        pytest.skip(f"Chromium {path} (from $FEDCHAIN_CHROMIUM or {record}) is not executable")
    return path


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile (its own user-data-dir), headless, closed after the test."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    executable = chromium_path()
    with playwright_api.sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(executable),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            yield context
        finally:
            context.close()


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def cell(page: Any, attribute: str, value: str) -> str:
    return str(page.locator(f'td[data-{attribute}="{value}"]').first.inner_text())


def wait_text(page: Any, selector: str, pattern: str) -> None:
    """Until the element's text matches (the page re-renders itself; nothing reloads it)."""
    page.wait_for_function(
        "([sel, pat]) => { const e = document.querySelector(sel);"
        " return e !== null && new RegExp(pat).test(e.innerText); }",
        arg=[selector, pattern],
        timeout=WAIT_MS,
    )


@contextmanager
def dashboard_page(
    browser: Any, sources: DashboardSources, name: str, host: str = "127.0.0.1"
) -> Iterator[tuple[RunningDashboard, Any]]:
    """A dashboard and a fresh page; a screenshot of the page if the test fails."""
    with closing(start_dashboard(sources, host=host, port=0)) as dashboard:
        page = browser.new_page()
        try:
            yield dashboard, page
        except BaseException:
            screenshot(page, f"failed-{name}")
            raise


def gas_of_round(fed: LocalFederation, round_no: int) -> int:
    """The round's gas, summed from receipts by the test itself (every event of the round but
    its opening, which belongs to the transaction that ended the round before)."""
    assert fed.deployer is not None and fed.w3 is not None
    found = [
        e
        for e in fed.deployer.logs(ROUND_EVENTS, fed.task_id, round_no)
        if not isinstance(e, RoundOpened)
    ]
    hashes = {e.tx_hash for e in found}
    return sum(int(fed.w3.eth.get_transaction_receipt(h)["gasUsed"]) for h in hashes)


def test_peer_view_follows_a_federation_live_and_matches_the_chain(
    federation_factory: Any, browser: Any
) -> None:
    fed: LocalFederation = federation_factory(HOSPITALS, rounds=2)
    assert fed.deployer is not None
    cfg = load_config(fed.hospital("cleveland").config_path)
    with dashboard_page(browser, DashboardSources.of_peer(cfg), "peer-view") as (dash, page):
        page.goto(dash.url)
        wait_text(page, "#tasks", r"0 / 2")
        page.evaluate("window.__notReloaded = true")
        members = fed.deployer.members()
        members_text = page.inner_text("#members")
        for address in members:
            assert address in members_text
        assert "peer view" in page.inner_text("#summary").lower()
        own = keystore_address(cfg.keys.eth_keystore)
        assert cell(page, "address", own) == own
        assert "heart-e2e" in page.inner_text("#tasks")  # the spec's name, read from IPFS
        assert "no rounds recorded yet" in page.inner_text("#quality")  # not an error
        screenshot(page, "1-peer-view-before-rounds")

        for name in HOSPITALS:
            fed.spawn_peer(name)
        wait_task_done(fed, rounds=2)
        wait_text(page, "#tasks", r"2 / 2")  # the page followed on its own: nothing reloaded it
        wait_peers_exit(fed)
        claimed = fed.deployer.events(ContributionClaimed, fed.task_id)
        assert claimed, "the peers claimed no credit; nothing to compare"
        for address in members:
            credit = fed.deployer.credit_of(address)
            page.wait_for_function(
                "([a, c]) => { const e = document.querySelector(`td[data-credit='${a}']`);"
                " return e !== null && e.innerText === String(c); }",
                arg=[address, credit],
                timeout=WAIT_MS,
            )
        assert page.evaluate("window.__notReloaded") is True

        statuses = page.locator("#rounds-table td[data-status]").all_inner_texts()
        assert statuses == ["finalized", "finalized"]  # newest first
        for round_no in (1, 2):
            gas = cell(page, "gas", f"{fed.task_id}/{round_no}")
            assert gas == str(gas_of_round(fed, round_no))
        assert cell(page, "finalized", "2") == "2 / 2"
        # the peer's own records: agreed model's metric per round on a's own test split
        assert "cleveland" in page.inner_text("#members-table")  # its own records name it
        quality = page.inner_text("#quality")
        assert "needs a peer's records" not in quality
        assert re.search(r"round 1\s+round 2", quality)
        assert re.search(r"\b0\.\d{4}\b", quality)
        assert "needs a peer's records" not in page.inner_text("#privacy")
        screenshot(page, "2-peer-view-task-completed")


def test_auditor_view_needs_the_token_beyond_loopback_and_shows_outages(
    federation_factory: Any, browser: Any
) -> None:
    fed: LocalFederation = federation_factory(HOSPITALS, rounds=2)
    assert fed.deployer is not None and fed.chain is not None and fed.w3 is not None
    kubo = fed.hospital("hungary").kubo
    sources = DashboardSources(fed.chain.rpc_url, fed.deployer.address, ipfs_api=kubo.api_multiaddr)
    with dashboard_page(browser, sources, "auditor-view", host="0.0.0.0") as (dash, page):
        token = dash.server.token
        assert token and dash.url.endswith(f"/?token={token}")
        refused = page.goto(dash.url.split("?")[0])
        assert refused is not None and refused.status == 401
        assert "token" in page.inner_text("body")
        assert page.goto(dash.url.split("?")[0] + "api/snapshot?token=wrong").status == 401
        screenshot(page, "3-auditor-without-token-401")

        page.goto(dash.url)
        wait_text(page, "#rounds", r"collecting")
        page.evaluate("window.__notReloaded = true")
        assert "auditor view" in page.inner_text("#summary").lower()
        for section in ("#quality", "#left-out"):
            assert "needs a peer's records" in page.inner_text(section)
        assert "needs a peer's records" in page.inner_text("#privacy")
        members = fed.deployer.members()
        for address in members:
            assert cell(page, "address", address) == address
        assert "0 / 3" in page.inner_text("#rounds-table")

        # an on-chain action: one member submits an update; the page follows without reload
        member = FederationClient(
            fed.w3, fed.deployer.address, Account.from_key(fed.member_key("cleveland"))
        )
        member.submit_update(fed.task_id, 1, cid_of(b"dashboard test update"), 10)
        wait_text(page, "#rounds-table", r"1 / 3")
        screenshot(page, "4-auditor-after-one-update")

        kubo.stop()
        wait_text(page, "#sources", r"ipfs: DOWN")
        fed.chain.stop()
        wait_text(page, "#sources", r"chain: DOWN")
        # the last reading stays, marked as such
        assert "the chain is down: showing what it said at" in page.inner_text("#summary")
        first = members[0]
        assert cell(page, "address", first) == first
        assert "1 / 3" in page.inner_text("#rounds-table")
        assert page.evaluate("window.__notReloaded") is True
        screenshot(page, "5-auditor-chain-and-kubo-down")
