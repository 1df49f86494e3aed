"""Client plumbing on real chains: unreachable RPC, wrong address, nonces, gas and receipt waits.

Everything here is about JSON-RPC and web3 (raw transactions, nonces, gas, receipts, code at an
address), so these tests are real-chain only; the rules themselves are in the other files.
"""

from __future__ import annotations

import pytest

from fedchain.errors import LedgerError, ServiceUnavailableError
from fedchain.localnet.procs import free_port
from peer.ledger import errors as E
from peer.ledger.client import FederationClient, connect
from peer.ledger.sender import TransactionSender
from peer.ledger.types import ProposalKind
from tests.peer.ledger.conftest import (
    HOUR,
    MAX_SAMPLES,
    Fed,
    RealChain,
    cid_of,
    real_chain_only,
)

pytestmark = real_chain_only("JSON-RPC client plumbing: code checks, nonces, gas, receipt waits")

ANSWERS_32_ZERO_BYTES = bytes.fromhex("60206000f3")
"""Runtime code that returns 32 zero bytes to any call (PUSH1 32 PUSH1 0 RETURN)."""


def test_unreachable_rpc_names_the_url_and_the_fix() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServiceUnavailableError) as exc:
        connect(url, timeout=2)
    assert url in str(exc.value) and "rpc_url" in str(exc.value)


def _real(fed: Fed) -> RealChain:
    assert isinstance(fed.chain, RealChain)
    return fed.chain


def _deploy_runtime(fed: Fed, runtime: bytes) -> str:
    """Deploy ``runtime`` (up to 32 bytes) as a contract; return its address."""
    size = len(runtime)
    init = (
        bytes([0x7F]) + runtime.rjust(32, b"\x00")  # PUSH32 runtime, right-aligned
        + bytes([0x60, 0x00, 0x52])  # PUSH1 0 MSTORE
        + bytes([0x60, size, 0x60, 32 - size, 0xF3])  # PUSH1 size PUSH1 offset RETURN
    )  # fmt: skip
    deployer = fed.outsiders[2]
    sender = TransactionSender(_real(fed).w3, deployer, fed.chain.chain_id)
    receipt = sender.send(
        None, init, 100_000, context="deploy a stub", decode_revert=lambda _d, c: LedgerError(c)
    )
    return str(receipt["contractAddress"])


def test_an_address_without_a_federation_is_refused(fed: Fed) -> None:
    member = fed.members[0].account
    w3 = _real(fed).w3
    with pytest.raises(E.NotAFederation) as no_code:
        FederationClient(w3, fed.outsiders[0].address, member)
    assert f"no Federation contract at {fed.outsiders[0].address}" in str(no_code.value)
    # Code that answers every call, but not as a Federation would: refused before any use.
    stub = _deploy_runtime(fed, ANSWERS_32_ZERO_BYTES)
    with pytest.raises(E.NotAFederation, match="no Federation contract at") as wrong:
        FederationClient(w3, stub, member)
    assert isinstance(wrong.value, LedgerError) and "MAX_MEMBERS" in str(wrong.value)
    # Code that answers nothing (a lone STOP) fails to decode, and is refused the same way.
    silent = _deploy_runtime(fed, b"\x00")
    with pytest.raises(E.NotAFederation, match="no Federation contract at"):
        FederationClient(w3, silent, member)
    # The real contract passes the same check.
    assert FederationClient(w3, fed.address, member).member_count() == 3


def test_two_clients_sharing_a_key_resync_their_nonce(fed: Fed) -> None:
    original = fed.members[0]
    assert isinstance(original, FederationClient)
    task = fed.new_task()  # the original's local nonce counter is now in use
    twin = fed.client(original.account)
    pid = twin.propose(ProposalKind.ADMIT, fed.outsiders[1].address, "12D3KooWTwin")
    # The original's counter is stale (the twin used that nonce); its next send recovers.
    second = original.create_task(cid_of(b"s2"), cid_of(b"m2"), 2, HOUR, HOUR, 1, MAX_SAMPLES)
    assert (task, second) == (1, 2)
    assert original.proposal(pid).proposer == original.account.address


def test_out_of_gas_is_reported_as_such(fed: Fed) -> None:
    task = fed.new_task()
    starved = FederationClient(_real(fed).w3, fed.address, fed.members[0].account, gas_limit=30_000)
    with pytest.raises(E.TransactionFailed, match="used all its gas"):
        starved.submit_update(task, 1, fed.update_cid(task, 1, 0), 5)


def test_receipt_wait_times_out_when_nothing_is_mined(fed: Fed) -> None:
    task = fed.new_task(round_duration=HOUR)
    real = _real(fed)
    if real.name == "geth":
        pytest.skip("geth's developer mode has no RPC to pause sealing (miner_stop is gone)")
    slow = FederationClient(real.w3, fed.address, fed.members[1].account, receipt_timeout=0.3)
    pause, resume = (
        (("evm_setAutomine", [False]), ("evm_setAutomine", [True]))
        if real.name == "anvil"
        else (("miner_stop", []), ("miner_start", []))
    )
    real.rpc(*pause)
    try:
        with pytest.raises(E.ReceiptTimeout, match="not mined"):
            slow.submit_update(task, 1, fed.update_cid(task, 1, 1), 5)
    finally:
        real.rpc(*resume)
        real.rpc("evm_mine")
    assert fed.members[0].submission_of(task, 1, slow.account.address)[1] == 5
