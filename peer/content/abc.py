"""What the round logic needs from a content-addressed store.

Model weights and updates travel as immutable blobs named by CIDv1.  The round
logic only adds, fetches, pins and connects to peers; keeping that to one small
interface lets every backend be checked by the same conformance tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType

from peer.content.cid import Cid

DEFAULT_PIN_TIMEOUT = 120.0
"""Seconds ``pin`` may spend fetching content that is not yet local."""


class ContentStore(ABC):
    """A node's view of the shared, content-addressed blob store.

    CIDs are accepted as :class:`~peer.content.cid.Cid` values or as their text;
    ``add`` returns the text (what Kubo prints).

    Errors: ``ServiceUnavailableError`` when the backend or a peer cannot be
    reached, ``ContentError`` for a bad CID or content that cannot be fetched in
    time, and its subclass ``ContentTooLarge`` for content over a size limit.
    All come from ``fedchain.errors``.
    """

    @property
    @abstractmethod
    def peer_id(self) -> str:
        """This node's identity on the content network (a libp2p peer id)."""

    @abstractmethod
    def add(self, data: bytes) -> str:
        """Store ``data``, pin it, and return its CIDv1.

        The CID depends only on the bytes (raw leaves, fixed chunking), so every
        peer that adds the same bytes gets the same CID.
        """

    @abstractmethod
    def get(self, cid: Cid | str, *, timeout: float, max_bytes: int | None = None) -> bytes:
        """Return the content of ``cid``, fetching it from peers if needed.

        The size is learnt before the body is fetched: content over ``max_bytes``
        raises ContentTooLarge without being downloaded, so a hostile member
        cannot make peers hold a huge object in memory.  Raises ContentError
        naming the CID if it cannot be fetched completely within ``timeout``
        seconds.  Never returns partial content, nor content that does not hash
        to ``cid``.
        """

    @abstractmethod
    def pin(self, cid: Cid | str, *, timeout: float = DEFAULT_PIN_TIMEOUT) -> None:
        """Keep ``cid`` (fetched first if needed) until it is unpinned; idempotent."""

    @abstractmethod
    def has_local(self, cid: Cid | str) -> bool:
        """True if the whole of ``cid`` is stored locally (no network is used)."""

    @abstractmethod
    def connect(self, multiaddr: str) -> None:
        """Open a connection to the peer at ``multiaddr`` (``.../p2p/<peer id>``)."""

    @abstractmethod
    def swarm_peer_count(self) -> int:
        """How many content-network peers this node is connected to now.

        Zero means fetches from other members cannot succeed, which a peer
        reports as an error rather than waiting on timeouts.
        """

    @abstractmethod
    def close(self) -> None:
        """Release the connection to the backend; safe to call more than once."""

    def __enter__(self) -> ContentStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
