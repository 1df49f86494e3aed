"""Fetching content named on the chain (members' updates, agreed models): verified locally,
prefetched on gossip hints.

The chain names each update by CID.  An update over the size limit is refused
by the store before it is downloaded; the bytes that do arrive are hashed here,
locally, to the CID they must have (``peer.content.unixfs``), so nothing is
handed back to Kubo to check.  Gossip only tells us early what to fetch; nothing
fetched is trusted until it is checked here against the on-chain record.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor

from consensus.serialization import MAX_MODEL_BYTES
from fedchain.errors import (
    ContentError,
    ContentTooLarge,
    FedchainError,
    ProtocolError,
    ServiceUnavailableError,
)
from peer.content.abc import ContentStore
from peer.content.unixfs import file_cid

log = logging.getLogger("fedchain.peer.updates")


class ContentFetcher:
    """A small cache of verified content by CID (updates and global models), filled by
    prefetch or on demand."""

    def __init__(
        self,
        store: ContentStore,
        *,
        timeout: float,
        max_bytes: int = MAX_MODEL_BYTES,
        workers: int = 2,
        executor: Executor | None = None,
    ) -> None:
        """``executor`` runs the fetches (default: a pool of ``workers`` threads, closed with
        this fetcher); an inline one makes every fetch happen at the call, deterministically."""
        self._store = store
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._owned = executor is None
        self._pool: Executor = executor or ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="prefetch"
        )
        self._lock = threading.Lock()
        self._pending: dict[str, Future[bytes]] = {}

    def prefetch(self, cid: str, *, max_bytes: int | None = None) -> None:
        """Start fetching ``cid`` in the background unless already under way.

        ``max_bytes`` (default: the fetcher's) bounds this content: an update's limit follows
        from the task's encoding and is smaller than an aggregate's.
        """
        limit = self._max_bytes if max_bytes is None else max_bytes
        with self._lock:
            if cid not in self._pending:
                self._pending[cid] = self._pool.submit(
                    self._store.get, cid, timeout=self._timeout, max_bytes=limit
                )

    def fetch_verified(self, cid: str, *, max_bytes: int | None = None) -> bytes:
        """The bytes behind ``cid``, at most ``max_bytes``, checked locally to hash to ``cid``."""
        self.prefetch(cid, max_bytes=max_bytes)
        with self._lock:
            future = self._pending[cid]
        try:
            data = future.result(timeout=self._timeout + 5)
        except (ContentTooLarge, ServiceUnavailableError):
            # Too large is a verdict on the content; an unreachable own Kubo is our outage.
            self.forget(cid)
            raise
        except FedchainError as exc:
            self.forget(cid)
            raise ContentError(f"update {cid} could not be fetched: {exc}") from None
        except TimeoutError:
            self.forget(cid)
            raise ContentError(f"update {cid} was not found within {self._timeout:.0f} s") from None
        actual = file_cid(data)
        if actual != cid:
            self.forget(cid)
            raise ProtocolError(f"content fetched for {cid} hashes to {actual}")
        return data

    def remember(self, cid: str, data: bytes) -> None:
        """Record bytes we produced ourselves, so they are never fetched back."""
        future: Future[bytes] = Future()
        future.set_result(data)
        with self._lock:
            self._pending[cid] = future

    def forget(self, cid: str) -> None:
        with self._lock:
            self._pending.pop(cid, None)

    def clear(self) -> None:
        with self._lock:
            self._pending.clear()

    def close(self) -> None:
        if self._owned:
            self._pool.shutdown(wait=False, cancel_futures=True)
        log.debug("update fetcher closed")
