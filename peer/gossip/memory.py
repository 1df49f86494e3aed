"""An in-memory twin of the libp2p gossip layer, for simulators and unit tests.

``MemoryGossipNetwork`` is one topic bus in one process; ``network.join(peer_id,
validator=...)`` returns a ``MemoryGossip`` (a :class:`~peer.gossip.abc.Gossip`)
that passes the same conformance suite as ``Libp2pGossip``
(``tests/peer/gossip/conformance.py``).

Kept from the real layer, because the node code relies on it:

* a message is judged by each receiver *before* it is delivered (the same
  hook as py-libp2p's topic validator, see ``peer.gossip.hook``): over the
  receiver's ``max_message_bytes`` -> "too large"; the validator raising ->
  its ``reason`` or exception type; returning False -> "refused"; the
  validator's result travels as ``GossipMessage.validated``; rejections,
  acceptances and inbox overflow are counted in ``stats()`` under the same
  names as the real one;
* a publisher never receives its own messages, and its own validator does not
  judge them; ``sender_peer_id`` is the publisher's peer id;
* publishing more than ``max_message_bytes`` raises ProtocolError, even before
  ``start()``; publishing before ``start()`` or after ``close()`` raises
  ServiceUnavailableError; ``close()`` is idempotent and final;
* each inbox holds at most ``inbox_capacity`` messages; overflow is dropped
  and counted as ``inbox_dropped``.

Differences, on purpose:

* every running peer is connected to every other (a full mesh), so there is no
  relaying: each receiver gets the message straight from the publisher, and
  judges it once, as GossipSub's seen-cache makes the real one do;
* delivery is synchronous and deterministic: ``publish`` validates and queues
  the message at each receiver, in peer-id order, before it returns (the
  validators run in the publisher's thread, under the network's lock);
* time is not wall time when the network is made with ``wall_clock=False``:
  ``receive(timeout)`` then returns at once (None when nothing is queued), which
  suits a single-threaded simulator; by default it blocks up to ``timeout``
  like the real one, for threaded use.

Test hooks on the network: :meth:`MemoryGossipNetwork.drop_all`,
:meth:`MemoryGossipNetwork.drop_randomly` (seeded, reproducible),
:meth:`MemoryGossipNetwork.duplicate_randomly` (seeded),
:meth:`MemoryGossipNetwork.partition` / :meth:`MemoryGossipNetwork.heal`, and
:meth:`MemoryGossipNetwork.inject` (a message from any claimed sender, e.g. a
forger outside the network).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import deque
from typing import Final

from fedchain.errors import ConfigError, ProtocolError, ServiceUnavailableError
from peer.gossip.abc import Gossip, GossipMessage
from peer.gossip.hook import REFUSED, TOO_LARGE, Validator, rejection_reason
from peer.gossip.stats import GossipCounters, GossipStats

logger = logging.getLogger("fedchain.peer.gossip")

DEFAULT_TOPIC: Final = "fedchain/memory"
DEFAULT_MAX_MESSAGE_BYTES: Final = 64 * 1024  # Libp2pGossip's default
MAX_PAYLOAD_BYTES: Final = 1_000_000  # Libp2pGossip's upper bound (pubsub frames are 1 MiB)
INBOX_CAPACITY: Final = 10_000  # Libp2pGossip's


class MemoryGossipNetwork:
    """One gossip topic shared by in-memory peers; thread-safe, deterministic delivery."""

    def __init__(self, *, topic: str = DEFAULT_TOPIC, wall_clock: bool = True) -> None:
        if not topic:
            raise ConfigError("gossip topic must be a non-empty string, e.g. 'fedchain/<task>'")
        self.topic = topic
        self.wall_clock = wall_clock
        self._lock = threading.RLock()
        self._members: dict[str, MemoryGossip] = {}  # joined and not closed, by peer id
        self._isolated: set[str] = set()
        self._drop_all = False
        self._drop_probability = 0.0
        self._duplicate_probability = 0.0
        self._random = random.Random(0)
        self._lost = 0

    def join(
        self,
        peer_id: str,
        *,
        validator: Validator | None = None,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        inbox_capacity: int = INBOX_CAPACITY,
    ) -> MemoryGossip:
        """A new, not yet started peer on this topic; ``peer_id`` must not be in use."""
        if not isinstance(peer_id, str) or not peer_id or "/" in peer_id:
            raise ConfigError(f"peer id {peer_id!r} must be a non-empty string without '/'")
        if not 0 < max_message_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigError(
                f"max_message_bytes={max_message_bytes} is out of range; use 1..{MAX_PAYLOAD_BYTES}"
                " (libp2p pubsub frames are capped at 1 MiB)"
            )
        if inbox_capacity < 1:
            raise ConfigError(f"inbox_capacity={inbox_capacity} must be at least 1")
        with self._lock:
            if peer_id in self._members:
                raise ConfigError(f"peer {peer_id} has already joined this memory gossip network")
            gossip = MemoryGossip(self, peer_id, validator, max_message_bytes, inbox_capacity)
            self._members[peer_id] = gossip
            return gossip

    # -- test hooks --------------------------------------------------------------------

    def drop_all(self, enabled: bool = True) -> None:
        """Lose every message in transit (to every receiver) until called with False."""
        with self._lock:
            self._drop_all = enabled

    def drop_randomly(self, probability: float, *, seed: int = 0) -> None:
        """Lose each (message, receiver) delivery with ``probability``, reproducibly from ``seed``.

        Deliveries are drawn in publish order, then receiver peer-id order, so the
        same sequence of publishes loses the same messages.  0 turns it off.
        """
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"drop probability {probability} is not in [0, 1]")
        with self._lock:
            self._drop_probability = probability
            self._random = random.Random(seed)

    def duplicate_randomly(self, probability: float, *, seed: int = 0) -> None:
        """Deliver each delivered message a second time with ``probability`` (seeded).

        py-libp2p does this now and then, when a message arrives by two paths at
        once; node code must tolerate it.  0 turns it off.
        """
        if not 0.0 <= probability <= 1.0:
            raise ConfigError(f"duplicate probability {probability} is not in [0, 1]")
        with self._lock:
            self._duplicate_probability = probability
            self._random = random.Random(seed)

    def partition(self, *peer_ids: str) -> None:
        """Cut each of ``peer_ids`` off from every other peer (it still runs)."""
        with self._lock:
            self._isolated.update(peer_ids)

    def heal(self, *peer_ids: str) -> None:
        """Reconnect ``peer_ids`` (every partitioned peer if none is named)."""
        with self._lock:
            if peer_ids:
                self._isolated.difference_update(peer_ids)
            else:
                self._isolated.clear()

    def inject(self, sender_peer_id: str, data: bytes) -> None:
        """Deliver ``data`` as if ``sender_peer_id`` had published it (it need not have joined).

        Every running peer but the claimed sender judges and queues it, as for a
        publish; no size check is made on the sending side.
        """
        with self._lock:
            self._broadcast(sender_peer_id, bytes(data))

    @property
    def lost(self) -> int:
        """Deliveries lost by ``drop_all``/``drop_randomly`` so far (one per receiver)."""
        with self._lock:
            return self._lost

    def running_peers(self) -> list[str]:
        """Peer ids of the started, not closed peers, sorted."""
        with self._lock:
            return sorted(p for p, g in self._members.items() if g.is_running)

    # -- used by MemoryGossip -------------------------------------------------------

    def _connected(self, first: str, second: str) -> bool:
        return first != second and first not in self._isolated and second not in self._isolated

    def _peers_of(self, peer_id: str) -> list[str]:
        with self._lock:
            return [p for p in self.running_peers() if self._connected(peer_id, p)]

    def _broadcast(self, sender: str, data: bytes) -> None:
        """Offer ``data`` to every connected running peer; the caller holds the lock."""
        for receiver_id in self.running_peers():
            if not self._connected(sender, receiver_id):
                continue
            if self._drop_all or (
                self._drop_probability and self._random.random() < self._drop_probability
            ):
                self._lost += 1
                continue
            receiver = self._members[receiver_id]
            receiver._offer(sender, data)
            if self._duplicate_probability and self._random.random() < self._duplicate_probability:
                receiver._offer(sender, data)  # judged and counted again, as libp2p does

    def _leave(self, gossip: MemoryGossip) -> None:
        with self._lock:
            if self._members.get(gossip.peer_id) is gossip:
                del self._members[gossip.peer_id]


class MemoryGossip(Gossip):
    """One peer of a :class:`MemoryGossipNetwork`; see the module docstring."""

    def __init__(
        self,
        network: MemoryGossipNetwork,
        peer_id: str,
        validator: Validator | None,
        max_message_bytes: int,
        inbox_capacity: int,
    ) -> None:
        self._network = network
        self._peer_id = peer_id
        self._validator = validator
        self._max_message_bytes = max_message_bytes
        self._inbox_capacity = inbox_capacity
        self._counters = GossipCounters()
        self._inbox: deque[GossipMessage] = deque()
        self._arrived = threading.Condition()
        self._started = False
        self._closed = False

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> list[str]:
        if not self.is_running:
            raise ServiceUnavailableError("gossip host is not listening yet; call start() first")
        return [f"/memory/gossip/p2p/{self._peer_id}"]

    @property
    def is_running(self) -> bool:
        return self._started and not self._closed

    def start(self) -> None:
        with self._network._lock:
            if self._closed:
                raise ServiceUnavailableError("gossip host was closed; create a new one")
            if self._started:
                raise ServiceUnavailableError("gossip host already started")
            self._started = True

    def publish(self, data: bytes) -> None:
        if len(data) > self._max_message_bytes:
            raise ProtocolError(
                f"gossip message of {len(data)} bytes exceeds max_message_bytes="
                f"{self._max_message_bytes}; pin large payloads to IPFS and gossip the CID"
            )
        with self._network._lock:
            if not self.is_running:
                raise ServiceUnavailableError("gossip host is not running; call start() first")
            self._network._broadcast(self._peer_id, bytes(data))

    def receive(self, timeout: float) -> GossipMessage | None:
        with self._arrived:
            if not self._inbox and timeout > 0 and self._network.wall_clock and self.is_running:
                self._arrived.wait_for(lambda: bool(self._inbox) or self._closed, timeout)
            return self._inbox.popleft() if self._inbox else None

    def connected_peers(self) -> list[str]:
        if not self.is_running:
            return []
        return self._network._peers_of(self._peer_id)

    def stats(self) -> GossipStats:
        return self._counters.snapshot()

    def close(self) -> None:
        with self._arrived:
            self._closed = True
            self._arrived.notify_all()
        self._network._leave(self)

    # -- the receiving side, called by the network under its lock ------------------

    def _offer(self, sender: str, data: bytes) -> None:
        """Judge a message as the topic validator would, then queue it for receive()."""
        if len(data) > self._max_message_bytes:
            self._reject(sender, TOO_LARGE, f"{len(data)} bytes")
            return
        result: object = None
        if self._validator is not None:
            try:
                result = self._validator(sender, data)
            except Exception as error:
                self._reject(sender, rejection_reason(error), str(error))
                return
            if result is False:
                self._reject(sender, REFUSED, "validator returned False")
                return
        self._counters.accepted()
        message = GossipMessage(
            data=data, sender_peer_id=sender, topic=self._network.topic, validated=result
        )
        with self._arrived:
            if len(self._inbox) >= self._inbox_capacity:
                self._counters.inbox_dropped()
                logger.debug(
                    "gossip inbox of %s full (%d messages): dropped a message from %s",
                    self._peer_id,
                    self._inbox_capacity,
                    sender,
                )
                return
            self._inbox.append(message)
            self._arrived.notify()

    def _reject(self, sender: str, reason: str, detail: str) -> None:
        self._counters.rejected(reason)
        logger.debug(
            "%s refused a gossip message from %s: %s: %s", self._peer_id, sender, reason, detail
        )

    def __repr__(self) -> str:
        return f"MemoryGossip({self._peer_id!r}, running={self.is_running})"
