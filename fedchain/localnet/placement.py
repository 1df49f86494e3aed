"""Where a service of a local federation runs: on this host, or on a host of its own.

The demo and the devnet put every process on this machine's loopback. A test of what crosses a
network gives each institution (and the chain) a Linux network namespace of its own, i.e. its
own interfaces, address and loopback, like a separate machine on a LAN. A :class:`Placement`
says which namespace a service runs in and the address other hosts reach it on, so that the
launchers (chain, Kubo, peers) need no second code path:

* programs are started through :meth:`Placement.command` (``ip netns exec <ns> ...``);
* the launcher's own checks of a service that is reachable only inside its host (the Kubo RPC
  API stays on that host's loopback, as in a real deployment) go through :meth:`Placement.call`,
  which runs a function in a short-lived thread that has joined the namespace.

Only namespaces the caller created are ever entered; nothing here creates or deletes one.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from fedchain.errors import ConfigError, ToolchainError

LOOPBACK = "127.0.0.1"
NETNS_DIR = Path("/run/netns")
"""Where ``ip netns add`` keeps its named namespaces."""
_CLONE_NEWNET = 0x40000000

T = TypeVar("T")


@dataclass(frozen=True)
class WellKnownPorts:
    """The ports a host of its own uses (also the deployment guide's worked example).

    On one shared loopback every service needs a free port of its own; a separate host can use
    the same fixed ports as every other institution, as a real deployment would.
    """

    chain_rpc: int = 8545
    kubo_api: int = 5001
    kubo_swarm: int = 4001
    gossip: int = 4101


WELL_KNOWN_PORTS = WellKnownPorts()


@dataclass(frozen=True)
class Placement:
    """A host for one service: a network namespace (None: this one) and its address there.

    ``address`` is what the service binds to for other hosts (chain RPC, Kubo swarm, gossip)
    and what the others are told to dial; an own-host-only service (the Kubo RPC API) binds to
    the placement's loopback instead.
    """

    address: str = LOOPBACK
    netns: str | None = None

    def __post_init__(self) -> None:
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            raise ConfigError(
                f"placement address {self.address!r} is not an IP address; give the host's "
                "address on the federation's network, e.g. 10.231.0.11"
            ) from None
        if ip.version != 4 or ip.is_unspecified:
            raise ConfigError(
                f"placement address {self.address} cannot be dialled by other hosts; give the "
                "host's own IPv4 address"
            )
        if self.netns is not None and not self.netns.replace("-", "").isalnum():
            raise ConfigError(
                f"network namespace name {self.netns!r} is not allowed; use letters, digits and '-'"
            )

    @property
    def own_host(self) -> bool:
        """True if the service has a host (namespace) of its own, so its ports are its own."""
        return self.netns is not None

    def command(self, argv: Sequence[str]) -> list[str]:
        """``argv`` as run on this host: prefixed with ``ip netns exec <ns>`` when it has one.

        ``ip netns exec`` replaces itself with the program, so the PID (and process group) of
        the child is the program's own and stopping it works as for any local process.
        """
        if self.netns is None:
            return [str(a) for a in argv]
        return ["ip", "netns", "exec", self.netns, *(str(a) for a in argv)]

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with this host's network: directly, or in a thread inside the namespace.

        Network namespaces are per thread on Linux, so only the helper thread (which ends right
        after ``fn``) sees the namespace; ``fn`` must close every connection it opens.
        """
        if self.netns is None:
            return fn()
        outcome: list[T] = []
        failure: list[BaseException] = []

        def run() -> None:
            try:
                _enter_netns(self.netns or "")
                outcome.append(fn())
            except BaseException as exc:  # handed to the caller's thread below
                failure.append(exc)

        worker = threading.Thread(target=run, name=f"netns-{self.netns}", daemon=True)
        worker.start()
        worker.join()
        if failure:
            raise failure[0]
        return outcome[0]

    def __str__(self) -> str:
        return self.address if self.netns is None else f"{self.address} (netns {self.netns})"


LOCAL = Placement()
"""This machine's loopback: the demo's and devnet's placement of everything."""


def _enter_netns(name: str) -> None:
    """Move the calling thread into the named namespace (needs CAP_SYS_ADMIN)."""
    path = NETNS_DIR / name
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ToolchainError(
            f"network namespace {name} cannot be opened ({exc.strerror}); create it with "
            "`ip netns add` first, as root"
        ) from None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise ToolchainError(
                f"cannot enter network namespace {name}: {os.strerror(err)}; run as root"
            )
    finally:
        os.close(fd)
