"""Raw JSON-RPC over a web3 provider, with the node's error kept intact.

The ledger needs the exact revert bytes a node returns (to name the custom
error), and it needs transport failures reported as "the chain is not
reachable", so calls go through ``provider.make_request`` rather than web3's
formatted methods.
"""

from __future__ import annotations

from typing import Any

from web3 import Web3
from web3.types import RPCEndpoint

from fedchain.errors import ServiceUnavailableError


class RpcError(Exception):
    """The node answered with a JSON-RPC error; ``revert_data`` is set when a call reverted."""

    def __init__(self, method: str, error: dict[str, Any]) -> None:
        self.method = method
        self.code = error.get("code")
        self.message = str(error.get("message", ""))
        self.revert_data = _revert_data(error.get("data"))
        super().__init__(f"{method}: {self.message} (code {self.code})")


def _revert_data(data: Any) -> bytes | None:
    """Revert bytes from an error's ``data`` (Anvil: hex string; Ganache: hex or an object)."""
    if isinstance(data, dict):
        data = data.get("result", data.get("data"))
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return None
    return None


def endpoint_of(w3: Web3) -> str:
    return str(getattr(w3.provider, "endpoint_uri", None) or w3.provider)


def rpc(w3: Web3, method: str, params: list[Any]) -> Any:
    """Send one request; return its ``result``, raise RpcError or ServiceUnavailableError."""
    try:
        answer = w3.provider.make_request(RPCEndpoint(method), params)
    except (OSError, ValueError) as exc:
        raise ServiceUnavailableError(
            f"chain RPC {endpoint_of(w3)} is not reachable ({method}: {exc}); start the chain or "
            "fix chain.rpc_url"
        ) from exc
    if "error" in answer:
        raise RpcError(method, dict(answer["error"]))
    return answer.get("result")
