"""Client plumbing on real chains: unreachable RPC, wrong address, nonces, gas and receipt waits."""

from __future__ import annotations

import pytest

from fedchain.errors import LedgerError, ServiceUnavailableError
from peer.ledger import errors as E
from peer.ledger.client import FederationClient, connect
from peer.ledger.types import ProposalKind
from peer.services.procs import free_port
from tests.peer.ledger.conftest import HOUR, Fed, cid_of


def test_unreachable_rpc_names_the_url_and_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailableError) as exc:
        connect(url, timeout=2)
    assert url in str(exc.value) and "rpc_url" in str(exc.value)


def test_an_address_without_the_contract_is_refused(fed: Fed) -> None:
    with pytest.raises(LedgerError, match="no contract at"):
        FederationClient(fed.w3, fed.outsiders[0].address, fed.members[0].account)


def test_two_clients_sharing_a_key_resync_their_nonce(fed: Fed) -> None:
    original = fed.members[0]
    task = fed.new_task()  # the original's local nonce counter is now in use
    twin = fed.client(original.account)
    pid = twin.propose(ProposalKind.ADMIT, fed.outsiders[1].address, "12D3KooWTwin")
    # The original's counter is stale (the twin used that nonce); its next send recovers.
    second = original.create_task(cid_of(b"s2"), cid_of(b"m2"), 1, HOUR, HOUR, 1)
    assert (task, second) == (1, 2)
    assert original.proposal(pid).proposer == original.account.address


def test_out_of_gas_is_reported_as_such(fed: Fed) -> None:
    task = fed.new_task()
    starved = FederationClient(fed.w3, fed.address, fed.members[0].account, gas_limit=30_000)
    with pytest.raises(E.TransactionFailed, match="used all its gas"):
        starved.submit_update(task, 1, fed.update_cid(task, 1, 0), 5)


def test_receipt_wait_times_out_when_nothing_is_mined(fed: Fed) -> None:
    task = fed.new_task(round_duration=HOUR)
    slow = FederationClient(fed.w3, fed.address, fed.members[1].account, receipt_timeout=0.3)
    pause, resume = (
        (("evm_setAutomine", [False]), ("evm_setAutomine", [True]))
        if fed.chain.name == "anvil"
        else (("miner_stop", []), ("miner_start", []))
    )
    fed.chain.rpc(*pause)
    try:
        with pytest.raises(E.ReceiptTimeout, match="not mined"):
            slow.submit_update(task, 1, fed.update_cid(task, 1, 1), 5)
    finally:
        fed.chain.rpc(*resume)
        fed.chain.rpc("evm_mine")
    assert fed.members[0].submission_of(task, 1, slow.account.address)[1] == 5
