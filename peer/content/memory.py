"""An in-memory twin of the Kubo content store, for simulators and unit tests.

``MemoryContentNetwork`` is a swarm of named nodes living in one process; each
node has its own blockstore and pin set, and ``network.store(name)`` opens a
``MemoryContentStore`` on it (a handle, like a client of a Kubo daemon: closing
it leaves the node and its content in place).  It passes the same conformance
suite as ``KuboContentStore`` (``tests/peer/content/conformance.py``).

What is kept from Kubo, because the node code relies on it:

* CIDs are byte-identical to ``ipfs add`` with fedchain's options (computed by
  ``peer.content.unixfs``), so CIDs from either backend mix freely;
* ``get`` fetches only from *connected* nodes; the size is learnt from the
  holder before the body "moves", so content over ``max_bytes`` is refused
  without being copied; what arrives is hashed and never returned (nor kept)
  unless it hashes to the CID -- a node holding corrupt bytes is skipped for the
  next holder, as Bitswap drops a bad block;
* a fetched object is kept locally (``has_local``) but not pinned; ``add`` and
  ``pin`` pin;
* addresses look like ``/memory/<name>/p2p/<peer id>``, with a well-formed
  Ed25519 libp2p peer id derived from the name (same name, same id).

What differs, on purpose:

* time is not wall time: a fetch of content that no connected node holds fails
  at once (the ``timeout`` is checked, never slept), unless the network was made
  with ``wait_for_content=True``, when it waits up to ``timeout`` for some
  connected node to add it (for threaded simulations);
* content is held as whole objects, not blocks; a ``pin`` fetches the whole
  object at once.

Test hooks on the network: :meth:`MemoryContentNetwork.set_reachable` (a node
whose daemon is down: its own store raises ServiceUnavailableError, peers can
neither connect to it nor fetch from it), :meth:`MemoryContentNetwork.plant`
(put arbitrary bytes under a CID at one node), :meth:`MemoryContentNetwork.pins`
and :meth:`MemoryContentNetwork.disconnect`.
"""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field

from fedchain.errors import (
    ConfigError,
    ContentError,
    ContentTooLarge,
    ServiceUnavailableError,
)
from peer.content.abc import DEFAULT_PIN_TIMEOUT, ContentStore
from peer.content.cid import Cid
from peer.content.unixfs import MAX_FLAT_FILE_BYTES, file_cid
from peer.gossip.peer_id import peer_id_from_seed

ADDRESS_PREFIX = "/memory/"
_PEER_ID_DOMAIN = b"fedchain memory content node\0"


def memory_peer_id(name: str) -> str:
    """The libp2p-style peer id (``12D3KooW...``) of the memory node called ``name``."""
    return peer_id_from_seed(hashlib.sha256(_PEER_ID_DOMAIN + name.encode()).digest())


@dataclass
class _Node:
    """One content node: its objects (whole files by CID), pins and connections."""

    name: str
    peer_id: str
    address: str
    objects: dict[Cid, bytes] = field(default_factory=dict)
    pins: set[Cid] = field(default_factory=set)
    peers: set[str] = field(default_factory=set)  # names of connected nodes
    reachable: bool = True


class MemoryContentNetwork:
    """A swarm of in-memory content nodes; thread-safe; one lock guards all state."""

    def __init__(self, *, wait_for_content: bool = False) -> None:
        self.wait_for_content = wait_for_content
        self._nodes: dict[str, _Node] = {}
        self._changed = threading.Condition(threading.RLock())

    # -- stores ------------------------------------------------------------------

    def store(self, name: str) -> MemoryContentStore:
        """Open a store on node ``name``, creating the node (empty) on first use."""
        if not isinstance(name, str) or not name or "/" in name or name != name.strip():
            raise ConfigError(
                f"memory content node name {name!r} must be a non-empty string without '/' "
                "or surrounding spaces"
            )
        with self._changed:
            if name not in self._nodes:
                peer_id = memory_peer_id(name)
                address = f"{ADDRESS_PREFIX}{name}/p2p/{peer_id}"
                self._nodes[name] = _Node(name, peer_id, address)
        return MemoryContentStore(self, name)

    def address(self, name: str) -> str:
        """The multiaddr other stores ``connect`` to for node ``name``."""
        return self._node(name).address

    # -- test hooks ----------------------------------------------------------------

    def set_reachable(self, name: str, reachable: bool) -> None:
        """Take node ``name`` down (False) or bring it back (True); content and pins stay.

        A down node's own stores raise ServiceUnavailableError on every call but
        ``peer_id``/``close``; other nodes cannot connect to it or fetch from it,
        and it does not count as their swarm peer.
        """
        with self._changed:
            self._node(name).reachable = reachable
            self._changed.notify_all()

    def plant(self, name: str, cid: Cid | str, data: bytes) -> None:
        """Make node ``name`` hold ``data`` under ``cid``, whether or not it hashes to it."""
        key = Cid.of(cid)
        with self._changed:
            self._node(name).objects[key] = bytes(data)
            self._changed.notify_all()

    def pins(self, name: str) -> frozenset[str]:
        """Text CIDs pinned at node ``name`` (what ``ipfs pin ls`` would list)."""
        with self._changed:
            return frozenset(cid.text for cid in self._node(name).pins)

    def disconnect(self, first: str, second: str) -> None:
        """Drop the connection between two nodes, if any."""
        with self._changed:
            self._node(first).peers.discard(second)
            self._node(second).peers.discard(first)

    # -- used by the stores ---------------------------------------------------------

    def _node(self, name: str) -> _Node:
        try:
            return self._nodes[name]
        except KeyError:
            raise ConfigError(f"no memory content node is called {name!r}") from None


class MemoryContentStore(ContentStore):
    """A handle on one node of a :class:`MemoryContentNetwork`; see the module docstring."""

    def __init__(self, network: MemoryContentNetwork, name: str) -> None:
        self._network = network
        self._name = name
        node = network._node(name)
        self._peer_id = node.peer_id
        self.address = node.address
        """The multiaddr other stores ``connect`` to (``/memory/<name>/p2p/<peer id>``)."""
        self._closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def peer_id(self) -> str:
        return self._peer_id

    # -- plumbing ---------------------------------------------------------------------

    def _live_node(self) -> _Node:
        """This store's node; the caller holds the network lock."""
        if self._closed:
            raise ServiceUnavailableError(f"this MemoryContentStore ({self._name}) has been closed")
        node = self._network._node(self._name)
        if not node.reachable:
            raise ServiceUnavailableError(
                f"memory content node {self._name} is unreachable (taken down by the test)"
            )
        return node

    def _holders(self, node: _Node, cid: Cid) -> list[_Node]:
        """Nodes that may serve ``cid``: this one first, then connected live peers by name."""
        holders = [node] if cid in node.objects else []
        for name in sorted(node.peers):
            peer = self._network._nodes[name]
            if peer.reachable and cid in peer.objects:
                holders.append(peer)
        return holders

    def _fetch(self, cid: Cid, timeout: float, max_bytes: int | None, what: str) -> bytes:
        """Verified bytes of ``cid``, from here or a connected node; kept locally if fetched."""
        deadline = time.monotonic() + timeout
        lock = self._network._changed
        with lock:
            while True:
                node = self._live_node()
                holders = self._holders(node, cid)
                if holders or not self._network.wait_for_content:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                lock.wait(remaining)
            corrupt: list[str] = []
            for holder in holders:
                data = holder.objects[cid]
                size = len(data)  # the root's announced size: nothing has moved yet
                if max_bytes is not None and size > max_bytes:
                    raise ContentTooLarge(cid.text, size, max_bytes)
                if size > MAX_FLAT_FILE_BYTES:
                    raise ContentError(
                        f"{cid} announces {size} bytes; fedchain cannot verify content over "
                        f"{MAX_FLAT_FILE_BYTES} bytes, so it is not fetched"
                    )
                actual = file_cid(data)
                if actual != cid.text:
                    corrupt.append(f"{holder.name} serves bytes hashing to {actual}")
                    continue
                node.objects.setdefault(cid, data)
                return data
        if corrupt:
            raise ContentError(
                f"content returned for {cid} does not hash to it ({'; '.join(corrupt)}); "
                "refusing it"
            )
        raise ContentError(
            f"could not {what} {cid} within {timeout:.1f} s (no connected peer has it); make "
            "sure a peer holding it is connected"
        )

    # -- ContentStore ---------------------------------------------------------------

    def add(self, data: bytes) -> str:
        data = bytes(data)
        cid = Cid.parse(file_cid(data))
        with self._network._changed:
            node = self._live_node()
            node.objects[cid] = data  # also heals a corrupt copy planted here
            node.pins.add(cid)
            self._network._changed.notify_all()
        return cid.text

    def get(self, cid: Cid | str, *, timeout: float, max_bytes: int | None = None) -> bytes:
        key = Cid.of(cid)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        return self._fetch(key, timeout, max_bytes, "fetch")

    def pin(self, cid: Cid | str, *, timeout: float = DEFAULT_PIN_TIMEOUT) -> None:
        key = Cid.of(cid)
        with self._network._changed:
            self._fetch(key, timeout, None, "pin")
            self._live_node().pins.add(key)

    def has_local(self, cid: Cid | str) -> bool:
        key = Cid.of(cid)
        with self._network._changed:
            return key in self._live_node().objects

    def connect(self, multiaddr: str) -> None:
        if "/p2p/" not in multiaddr:
            raise ConfigError(
                f"peer address {multiaddr!r} lacks /p2p/<peer id>; use the full swarm "
                "multiaddr the peer advertises"
            )
        with self._network._changed:
            node = self._live_node()
            target = self._network._nodes.get(_node_name(multiaddr))
            if target is None or target.address != multiaddr:
                reason = "no such node in this memory network"
            elif not target.reachable:
                reason = "the node is unreachable"
            elif target is node:
                reason = "dial to self attempted"
            else:
                node.peers.add(target.name)
                target.peers.add(node.name)
                self._network._changed.notify_all()
                return
        raise ServiceUnavailableError(
            f"cannot connect to peer {multiaddr}: {reason}; check that the peer is running "
            "and that the address is right"
        )

    def swarm_peer_count(self) -> int:
        with self._network._changed:
            node = self._live_node()
            return sum(1 for name in node.peers if self._network._nodes[name].reachable)

    def close(self) -> None:
        self._closed = True

    def __repr__(self) -> str:
        return f"MemoryContentStore({self._name!r}, peer_id={self._peer_id!r})"


def _node_name(multiaddr: str) -> str:
    """``<name>`` of ``/memory/<name>/p2p/<id>``, or "" for any other address."""
    if not multiaddr.startswith(ADDRESS_PREFIX):
        return ""
    return multiaddr[len(ADDRESS_PREFIX) :].split("/", 1)[0]
