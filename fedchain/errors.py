"""One exception base for the whole project, with precise subclasses.

Each subclass also inherits the builtin it refines, so callers can catch either
``FedchainError`` or the ordinary Python type.  Messages are written for the
operator: they name the bad input and say what to do about it.
"""

from __future__ import annotations


class FedchainError(Exception):
    """Base of every error fedchain raises on purpose."""


class ConfigError(FedchainError, ValueError):
    """A configuration file or option is missing or invalid."""


class KeystoreError(FedchainError, ValueError):
    """A key file cannot be read or decrypted (wrong password, corrupt file)."""


class DataError(FedchainError, ValueError):
    """A local data set is missing, corrupt or has an unexpected shape."""


class ServiceUnavailableError(FedchainError, ConnectionError):
    """An outside service (chain RPC, Kubo, a peer) cannot be reached."""


class ToolchainError(FedchainError, RuntimeError):
    """A required program (solc, anvil, ipfs, ...) is missing or failed."""


class ContentError(FedchainError, ValueError):
    """Content fetched from IPFS does not match what was expected."""


class ContentTooLarge(ContentError):
    """Content is bigger than the caller accepts; refused before it is downloaded."""

    def __init__(self, cid: str, size: int, limit: int) -> None:
        super().__init__(
            f"content {cid} is {size} bytes, over the {limit}-byte limit; it was not "
            "downloaded (raise the limit only if such content is expected)"
        )
        self.cid = cid
        self.size = size
        self.limit = limit


class LedgerError(FedchainError, RuntimeError):
    """A contract call was refused or a transaction failed."""


class ProtocolError(FedchainError, ValueError):
    """A peer message or an update violates the round protocol."""


class StateError(FedchainError, OSError):
    """The peer's own state folder or a record in it cannot be read or written."""
