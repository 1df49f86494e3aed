"""Interface of the gossip layer a peer node talks through.

The node's main loop is synchronous (web3, IPFS client, torch training), so the
interface is blocking and thread-safe; implementations hide whatever event loop
they run on.  Consensus code and tests depend on this interface only.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType

from peer.gossip.stats import GossipStats


@dataclass(frozen=True)
class GossipMessage:
    """One message received from another peer.

    ``sender_peer_id`` is the original publisher taken from the signed pubsub
    envelope, so it is authenticated even when the message was relayed.
    ``validated`` is what the gossip validator returned for it (e.g. the parsed
    announcement), so the receiver need not parse and check it again.
    """

    data: bytes
    sender_peer_id: str
    topic: str
    validated: object = None


class Gossip(ABC):
    """A publish/subscribe channel on one topic, shared by all federation peers."""

    @property
    @abstractmethod
    def peer_id(self) -> str:
        """Base58 libp2p peer ID of this host."""

    @property
    @abstractmethod
    def listen_addrs(self) -> list[str]:
        """Full multiaddrs other peers can dial, each ending in ``/p2p/<peer id>``."""

    @abstractmethod
    def start(self) -> None:
        """Start the host; return once listening, subscribed and bootstrap dials tried."""

    @abstractmethod
    def publish(self, data: bytes) -> None:
        """Publish ``data`` to the topic; thread-safe; raises ProtocolError if too large."""

    @abstractmethod
    def receive(self, timeout: float) -> GossipMessage | None:
        """Next message from another peer, or None after ``timeout`` seconds; thread-safe."""

    @abstractmethod
    def connected_peers(self) -> list[str]:
        """Peer IDs currently connected and subscribed to the topic."""

    @abstractmethod
    def stats(self) -> GossipStats:
        """Messages accepted, rejected (by reason) and dropped since the host was created."""

    @abstractmethod
    def close(self) -> None:
        """Stop the host and free its port; idempotent; never raises on shutdown races."""

    def __enter__(self) -> Gossip:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
