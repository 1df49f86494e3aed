"""Gas and block times: facts about transactions and blocks that the ledger interface does not
carry (it speaks of the contract's events, not of receipts).

Both are immutable once mined, so each is asked for once and kept: the dashboard polls every
second and a round's gas would otherwise cost one receipt request per transaction per poll.
"""

from __future__ import annotations

from typing import Protocol

from web3 import Web3

from fedchain.errors import FedchainError
from peer.ledger.rpc import RpcError, rpc


class ChainFacts(Protocol):
    def gas_used(self, tx_hash: str) -> int | None:
        """Gas the mined transaction used (None: not known here)."""

    def block_time(self, block: int) -> int | None:
        """Unix timestamp of a mined block (None: not known here)."""


class Web3ChainFacts:
    """Receipts and block headers over JSON-RPC, cached."""

    def __init__(self, w3: Web3) -> None:
        self.w3 = w3
        self._gas: dict[str, int] = {}
        self._times: dict[int, int] = {}

    def gas_used(self, tx_hash: str) -> int | None:
        if tx_hash not in self._gas:
            receipt = self._ask("eth_getTransactionReceipt", [tx_hash])
            if not receipt:
                return None
            self._gas[tx_hash] = int(receipt["gasUsed"], 16)
        return self._gas[tx_hash]

    def block_time(self, block: int) -> int | None:
        if block not in self._times:
            header = self._ask("eth_getBlockByNumber", [hex(block), False])
            if not header:
                return None
            self._times[block] = int(header["timestamp"], 16)
        return self._times[block]

    def _ask(self, method: str, params: list[object]) -> dict[str, str] | None:
        try:
            answer = rpc(self.w3, method, list(params))
        except (RpcError, FedchainError):
            return None
        return answer if isinstance(answer, dict) else None
