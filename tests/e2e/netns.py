"""A virtual LAN of network namespaces: one "host" per institution and one for the chain.

Each host is a namespace with its own loopback and one interface (``eth0``) on a bridge that
lives in a namespace of its own (``<tag>-lan``), so nothing but one veth leg is added to this
machine's own network: the leg (``<tag>r``, address :data:`COORDINATOR`) through which the test
process, like a consortium coordinator's workstation, deploys the contract and watches the
chain. Deleting the LAN namespace removes that leg too, so :meth:`VirtualLan.close` (and, after
a hard kill, the next run's clean-up of its own stale namespaces) leaves nothing behind.

Only namespaces this module creates are ever entered or deleted: their names start with
:data:`TAG_PREFIX` and carry the creating process's PID.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from types import TracebackType

from fedchain.localnet.placement import Placement

SUBNET = "10.231.0"
"""A private test range; refused if this machine already uses it."""
PREFIX = 24
COORDINATOR = f"{SUBNET}.1"
CHAIN_ADDRESS = f"{SUBNET}.2"
FIRST_INSTITUTION = 11
"""Institution ``i`` (0-based) is ``10.231.0.(11 + i)``: the deployment guide's plan."""
TAG_PREFIX = "fs"
_STALE = re.compile(rf"^{TAG_PREFIX}(\d+)-\S+")


class NamespacesUnavailable(Exception):
    """This machine cannot make network namespaces (the test is skipped, with the reason)."""


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")


def why_unavailable() -> str | None:
    """Why namespaces cannot be made here, or None if they can be tried."""
    if not sys.platform.startswith("linux"):
        return "network namespaces exist on Linux only"
    if os.geteuid() != 0:
        return "creating network namespaces needs root (run the test as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` command is not installed"
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True).stdout
    if f" {SUBNET}." in addrs or routes.startswith(f"{SUBNET}.") or f"\n{SUBNET}." in routes:
        return f"{SUBNET}.0/{PREFIX} is already in use on this machine"
    return None


def remove_stale() -> None:
    """Delete namespaces a killed earlier run of this test left (their PID is gone)."""
    listing = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for line in listing.splitlines():
        match = _STALE.match(line)
        if match is None or _alive(int(match.group(1))):
            continue
        subprocess.run(["ip", "netns", "del", line.split()[0]], capture_output=True, check=False)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class VirtualLan:
    """Hosts on one bridge; use as a context manager (everything is removed on exit)."""

    def __init__(self) -> None:
        self.tag = f"{TAG_PREFIX}{os.getpid()}"
        self.lan = f"{self.tag}-lan"
        self.namespaces: list[str] = []
        self.hosts: dict[str, Placement] = {}

    def open(self) -> VirtualLan:
        """Create the bridge and the coordinator's leg; NamespacesUnavailable if not possible."""
        done = subprocess.run(["ip", "netns", "add", self.lan], capture_output=True, text=True)
        if done.returncode != 0:
            raise NamespacesUnavailable(f"`ip netns add` failed: {done.stderr.strip()}")
        self.namespaces.append(self.lan)
        try:
            _ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.lan, "link", "set", "br0", "up")
            leg = f"{self.tag}r"
            _ip("link", "add", leg, "type", "veth", "peer", "name", "vr", "netns", self.lan)
            self._plug("vr")
            _ip("addr", "add", f"{COORDINATOR}/{PREFIX}", "dev", leg)
            _ip("link", "set", leg, "up")
        except BaseException:
            self.close()
            raise
        return self

    def add_host(self, name: str, address: str) -> Placement:
        """A namespace with ``address`` on the bridge and its own loopback up."""
        ns = f"{self.tag}-{name}"
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        port = f"v{len(self.hosts)}"
        # Both ends are born inside their namespaces: nothing is left here if this is killed.
        _ip(
            "link",
            "add",
            "eth0",
            "netns",
            ns,
            "type",
            "veth",
            "peer",
            "name",
            port,
            "netns",
            self.lan,
        )
        self._plug(port)
        _ip("-n", ns, "addr", "add", f"{address}/{PREFIX}", "dev", "eth0")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = Placement(address=address, netns=ns)
        return self.hosts[name]

    def _plug(self, port: str) -> None:
        _ip("-n", self.lan, "link", "set", port, "master", "br0")
        _ip("-n", self.lan, "link", "set", port, "up")

    def pids(self, name: str) -> set[int]:
        """PIDs of the processes running inside host ``name``'s namespace."""
        ns = self.hosts[name].netns
        assert ns is not None
        out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout
        return {int(p) for p in out.split()}

    def close(self) -> None:
        """Delete every namespace made here (this also removes every veth and the leg)."""
        subprocess.run(["ip", "link", "del", f"{self.tag}r"], capture_output=True, check=False)
        for ns in reversed(self.namespaces):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.namespaces.clear()

    def __enter__(self) -> VirtualLan:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
