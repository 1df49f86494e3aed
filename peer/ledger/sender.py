"""Sign transactions locally, send them raw, and wait for receipts with a short poll.

The peer's key never leaves the process (no node-side accounts).  The nonce is
counted locally so back-to-back transactions need no round trip, and gas is
given explicitly (Ganache's ``eth_estimateGas`` costs ~165 ms).  A receipt is
polled every few milliseconds at first (devnets mine on arrival, and web3's default
0.1 s poll would dominate every round), backing off to 50 ms on chains that seal
blocks on a period (geth).  When a transaction reverts, the call is replayed
against the block it was mined in to recover the revert data, which the caller
turns into a named exception.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from eth_account.signers.local import LocalAccount
from web3 import Web3

from fedchain.errors import LedgerError
from peer.ledger.errors import ReceiptTimeout, TransactionFailed
from peer.ledger.rpc import RpcError, rpc

log = logging.getLogger("fedchain.ledger")

GWEI = 10**9
DEFAULT_TIP = GWEI
MIN_FEE_CAP = 2 * GWEI
POLL_BACKOFF = 1.5
MAX_POLL = 0.05
"""Longest pause between receipt polls: at most 5% of a 1 s block period added to a wait."""

RevertDecoder = Callable[[bytes, str], LedgerError]


def _hex(value: int) -> str:
    return hex(value)


class TransactionSender:
    """Sends one account's transactions in order; thread-safe."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        chain_id: int,
        *,
        poll_interval: float = 0.005,
        timeout: float = 60.0,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.chain_id = chain_id
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._lock = threading.Lock()
        self._nonce: int | None = None
        self._fee_cap: int | None = None
        self._tip = DEFAULT_TIP

    # -- nonce and fees ------------------------------------------------------------

    def _sync_nonce(self) -> int:
        return int(rpc(self.w3, "eth_getTransactionCount", [self.account.address, "pending"]), 16)

    def _refresh_fees(self) -> None:
        block = rpc(self.w3, "eth_getBlockByNumber", ["latest", False])
        base = int(block.get("baseFeePerGas") or "0x0", 16)
        self._fee_cap = max(2 * base + self._tip, MIN_FEE_CAP)

    # -- sending ---------------------------------------------------------------------

    def _sign_and_send(self, to: str | None, data: bytes, gas: int) -> str:
        if self._nonce is None:
            self._nonce = self._sync_nonce()
        if self._fee_cap is None:
            self._refresh_fees()
        assert self._fee_cap is not None
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": self._nonce,
            "gas": gas,
            "maxFeePerGas": self._fee_cap,
            "maxPriorityFeePerGas": min(self._tip, self._fee_cap),
            "value": 0,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        tx_hash = rpc(self.w3, "eth_sendRawTransaction", ["0x" + signed.raw_transaction.hex()])
        self._nonce += 1
        return str(tx_hash)

    def send(
        self,
        to: str | None,
        data: bytes,
        gas: int,
        *,
        context: str,
        decode_revert: RevertDecoder,
    ) -> dict[str, Any]:
        """Send and wait; return the raw receipt of a successful transaction.

        Raises the decoded revert (via ``decode_revert``), TransactionFailed,
        ReceiptTimeout, LedgerError (node refused the transaction) or
        ServiceUnavailableError (node unreachable).
        """
        with self._lock:
            try:
                tx_hash = self._sign_and_send(to, data, gas)
            except RpcError as first:
                text = first.message.lower()
                # "replacement transaction underpriced": a block-period chain (geth) still holds
                # another handle's transaction with this nonce in its pool.
                if "nonce" in text or "known" in text or "replacement" in text:
                    self._nonce = None
                elif "fee" in text or "underpriced" in text:
                    self._fee_cap = None
                else:
                    raise LedgerError(
                        f"{context}: the chain refused the transaction: {first.message}"
                    ) from first
                try:
                    tx_hash = self._sign_and_send(to, data, gas)
                except RpcError as second:
                    raise LedgerError(
                        f"{context}: the chain refused the transaction: {second.message}"
                    ) from second
        receipt = self.wait_for_receipt(tx_hash, context=context)
        if int(receipt["status"], 16) == 1:
            return receipt
        raise self._explain_failure(to, data, gas, receipt, context, decode_revert)

    def wait_for_receipt(self, tx_hash: str, *, context: str) -> dict[str, Any]:
        """Poll fast at first (devnets mine on arrival), then back off to :data:`MAX_POLL`, so a
        chain with a block period (geth: 1 s) is not asked hundreds of times per transaction."""
        deadline = time.monotonic() + self.timeout
        interval = self.poll_interval
        while True:
            try:
                receipt = rpc(self.w3, "eth_getTransactionReceipt", [tx_hash])
            except RpcError as exc:
                # geth answers so until its transaction index is built (after a start): not yet.
                if "indexing is in progress" not in exc.message:
                    raise
                receipt = None
            if receipt is not None and receipt.get("blockNumber") is not None:
                log.debug(
                    "%s: %s mined in block %d after %.3f s",
                    context,
                    tx_hash,
                    int(receipt["blockNumber"], 16),
                    time.monotonic() - deadline + self.timeout,
                )
                return dict(receipt)
            if time.monotonic() > deadline:
                raise ReceiptTimeout(
                    f"{context}: transaction {tx_hash} was not mined within {self.timeout:.0f} s; "
                    "is the chain mining?"
                )
            time.sleep(interval)
            interval = min(interval * POLL_BACKOFF, max(MAX_POLL, self.poll_interval))

    def _explain_failure(
        self,
        to: str | None,
        data: bytes,
        gas: int,
        receipt: dict[str, Any],
        context: str,
        decode_revert: RevertDecoder,
    ) -> LedgerError:
        call: dict[str, Any] = {
            "from": self.account.address,
            "data": "0x" + data.hex(),
            "gas": _hex(gas),
        }
        if to is not None:
            call["to"] = to
        block = receipt["blockNumber"]
        used = int(receipt["gasUsed"], 16)
        try:
            rpc(self.w3, "eth_call", [call, block])
        except RpcError as exc:
            if exc.revert_data:
                return decode_revert(exc.revert_data, context)
            detail = exc.message
        else:
            detail = "replaying it no longer fails"
        hint = " (it used all its gas: raise the gas limit)" if used >= gas else ""
        return TransactionFailed(
            f"{context}: transaction {receipt['transactionHash']} failed in block "
            f"{int(block, 16)} using {used} of {gas} gas{hint}; {detail}"
        )
