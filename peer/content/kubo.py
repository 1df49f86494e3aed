"""ContentStore over a Kubo daemon's HTTP RPC API, through ipfshttpclient 0.7.

ipfshttpclient 0.7 predates Kubo 0.41, so three things are done differently
from its documentation:

* the client is constructed directly: ``ipfshttpclient.connect()`` refuses
  daemons newer than 0.8;
* requests go through the client's low-level ``request`` call, because the
  convenience wrappers cannot pass Kubo's server-side ``timeout`` option (they
  build ``opts`` themselves) and ``swarm.connect`` splits its address into
  single characters;
* a fetch is checked for completeness: when Kubo gives up half-way through
  ``cat`` it reports that in an HTTP trailer that the client ignores, so a
  timed-out fetch would otherwise look like short content.

A fetch first reads the size from the root block alone (``files/stat`` without
``with-local`` walks nothing else), so content over the caller's limit is
refused before its body moves; the body is then streamed, cut off one byte past
the announced size, and hashed as it arrives to the CID it must have.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ipfshttpclient
from ipfshttpclient import exceptions as ipfs_errors
from ipfshttpclient import multipart

from fedchain.errors import (
    ConfigError,
    ContentError,
    ContentTooLarge,
    ServiceUnavailableError,
)
from fedchain.logs import Progress
from peer.content.abc import DEFAULT_PIN_TIMEOUT, ContentStore
from peer.content.cid import Cid
from peer.content.unixfs import MAX_FLAT_FILE_BYTES, FileCidBuilder

# ipfshttpclient 0.7 passes an argument urllib3 2.x no longer needs.
warnings.filterwarnings(
    "ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning
)

ADD_OPTIONS: Mapping[str, str] = {
    "cid-version": "1",
    "raw-leaves": "true",
    "hash": "sha2-256",
    "chunker": "size-1048576",
    "max-file-links": "1024",
    "trickle": "false",
    "pin": "true",
}
"""Import settings fixed per request (not left to the daemon's config), so that
every peer derives the same CID from the same bytes.  They match Kubo's
``unixfs-v1-2025`` profile: CIDv1, raw leaves, 1 MiB chunks, 1024 links."""

log = logging.getLogger("fedchain.content")

LARGE_FETCH_BYTES = 8 * 2**20
"""Fetches at least this big log their progress (each quarter of the bytes)."""
DEFAULT_REQUEST_TIMEOUT = 30.0
"""Seconds allowed for calls that should not touch the network (add, stat)."""
CONNECT_TIMEOUT = 15.0
CLIENT_SLACK = 10.0
"""Extra seconds the HTTP client waits beyond Kubo's own deadline, so the daemon's
clearer error arrives first."""


def _go_duration(seconds: float) -> str:
    return f"{max(seconds, 0.001):.3f}s"


def _is_deadline(error: Exception) -> bool:
    return "deadline exceeded" in str(error) or isinstance(error, ipfs_errors.TimeoutError)


class _Fetch:
    """One ``get``: the CID and the deadline all its RPC calls share."""

    def __init__(self, cid: str, timeout: float) -> None:
        self.cid = cid
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def failed(self, reason: str) -> ContentError:
        return ContentError(
            f"could not fetch {self.cid} within {self.timeout:.1f} s ({reason}); make sure a "
            "peer holding it is connected"
        )


class KuboContentStore(ContentStore):
    """Content store backed by the Kubo daemon whose RPC API is at ``api_multiaddr``."""

    def __init__(
        self, api_multiaddr: str, *, request_timeout: float = DEFAULT_REQUEST_TIMEOUT
    ) -> None:
        self.api_multiaddr = api_multiaddr
        self.request_timeout = request_timeout
        self._closed = False
        try:
            self._client = ipfshttpclient.Client(api_multiaddr)
        except ipfs_errors.AddressError as exc:
            raise ConfigError(
                f"ipfs.api {api_multiaddr!r} is not a valid multiaddr "
                "(expected e.g. /ip4/127.0.0.1/tcp/5001/http)"
            ) from exc
        # The wrappers are unusable for our calls (see module docstring).
        self._http = self._client._client
        identity = self._request("/id")
        peer_id = identity[0].get("ID") if identity else None
        if not isinstance(peer_id, str) or not peer_id:
            raise ServiceUnavailableError(
                f"the service at {api_multiaddr} answered /id without a peer ID; is it Kubo?"
            )
        self._peer_id = peer_id

    # -- plumbing ------------------------------------------------------------

    def _request(
        self,
        path: str,
        args: Sequence[str] = (),
        *,
        opts: Mapping[str, str] | None = None,
        decoder: str = "json",
        stream: bool = False,
        offline: bool = False,
        timeout: float | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """One RPC call; an unreachable daemon becomes ServiceUnavailableError."""
        if self._closed:
            raise ServiceUnavailableError(
                f"this KuboContentStore ({self.api_multiaddr}) has been closed"
            )
        try:
            return self._http.request(
                path,
                args,
                opts=dict(opts or {}),
                decoder=decoder,
                stream=stream,
                offline=offline,
                timeout=timeout if timeout is not None else self.request_timeout,
                data=data,
                headers=dict(headers) if headers is not None else None,
            )
        except ipfs_errors.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc) else str(exc)[:200]
            raise ServiceUnavailableError(
                f"Kubo RPC API at {self.api_multiaddr} is not reachable ({reason}); start the "
                "Kubo daemon, or fix ipfs.api in the peer config to point at it"
            ) from exc

    @staticmethod
    def _validated(cid: Cid | str) -> str:
        return Cid.of(cid).text  # raises ContentError naming the CID if malformed

    # -- ContentStore ----------------------------------------------------------

    @property
    def peer_id(self) -> str:
        return self._peer_id

    def add(self, data: bytes) -> str:
        body, headers = multipart.stream_bytes(bytes(data), chunk_size=self._client.chunk_size)
        try:
            entries = self._request("/add", opts=ADD_OPTIONS, data=body, headers=headers)
        except ipfs_errors.Error as exc:
            raise ContentError(
                f"Kubo at {self.api_multiaddr} refused to add {len(data)} bytes: {exc}"
            ) from exc
        cid = entries[-1].get("Hash") if entries else None
        if not isinstance(cid, str):
            raise ContentError(f"Kubo at {self.api_multiaddr} returned no CID for add: {entries}")
        return self._validated(cid)

    def get(self, cid: Cid | str, *, timeout: float, max_bytes: int | None = None) -> bytes:
        cid = self._validated(cid)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        if max_bytes is not None and max_bytes < 0:
            raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
        fetch = _Fetch(cid, timeout)
        size = self._announced_size(fetch)
        if max_bytes is not None and size > max_bytes:
            raise ContentTooLarge(cid, size, max_bytes)
        if size > MAX_FLAT_FILE_BYTES:
            raise ContentError(
                f"{cid} announces {size} bytes; fedchain cannot verify content over "
                f"{MAX_FLAT_FILE_BYTES} bytes, so it is not fetched"
            )
        return self._stream_verified(fetch, size)

    def _announced_size(self, fetch: _Fetch) -> int:
        """The file size recorded in the root block (only that block is fetched)."""
        try:
            stat = self._request(
                "/files/stat",
                (f"/ipfs/{fetch.cid}",),
                opts={"timeout": _go_duration(fetch.remaining())},
                timeout=fetch.remaining() + CLIENT_SLACK,
            )
        except ipfs_errors.Error as exc:
            if _is_deadline(exc):
                raise fetch.failed("timed out") from exc
            raise ContentError(f"Kubo could not read {fetch.cid}: {exc}") from exc
        entry = stat[0] if stat else {}
        kind, size = entry.get("Type"), entry.get("Size")
        if kind != "file":
            raise ContentError(
                f"{fetch.cid} is a UnixFS {kind}, not a file; fedchain only stores files"
            )
        if not isinstance(size, int) or size < 0:
            raise ContentError(f"Kubo reported no valid size for {fetch.cid}: {entry}")
        return size

    def _stream_verified(self, fetch: _Fetch, size: int) -> bytes:
        """Read the body as it arrives, stopping past ``size`` bytes; check it hashes to the CID."""
        builder = FileCidBuilder()
        chunks: list[bytes] = []
        progress = (
            Progress(log, f"fetching {fetch.cid}", size, unit="bytes")
            if size >= LARGE_FETCH_BYTES
            else None
        )
        try:
            stream = self._request(
                "/cat",
                (fetch.cid,),
                # One byte more than announced, so a root that under-states its size shows.
                opts={"timeout": _go_duration(fetch.remaining()), "length": str(size + 1)},
                decoder="none",
                stream=True,
                timeout=fetch.remaining() + CLIENT_SLACK,
            )
            with stream:
                for chunk in stream:
                    builder.update(chunk)
                    if builder.size > size:
                        raise ContentError(
                            f"{fetch.cid} delivers more than the {size} bytes its root "
                            "announces; it is not a valid fedchain object"
                        )
                    chunks.append(chunk)
                    if progress is not None:
                        progress.update(builder.size)
                    if fetch.remaining() < 0:
                        raise fetch.failed(f"only {builder.size} of {size} bytes arrived")
        except ipfs_errors.Error as exc:
            if _is_deadline(exc):
                reason = f"timed out; only {builder.size} of {size} bytes arrived"
                raise fetch.failed(reason) from exc
            raise ContentError(f"Kubo could not read {fetch.cid}: {exc}") from exc
        except ServiceUnavailableError:
            raise
        except OSError as exc:  # the HTTP body broke off (requests' errors are OSErrors)
            raise fetch.failed(f"only {builder.size} of {size} bytes arrived: {exc}") from exc
        if builder.size != size:
            raise fetch.failed(f"only {builder.size} of {size} bytes arrived")
        if builder.cid() != fetch.cid:
            raise ContentError(
                f"content returned for {fetch.cid} hashes to {builder.cid()}; refusing it"
            )
        return b"".join(chunks)

    def pin(self, cid: Cid | str, *, timeout: float = DEFAULT_PIN_TIMEOUT) -> None:
        cid = self._validated(cid)
        try:
            self._request(
                "/pin/add",
                (cid,),
                opts={"recursive": "true", "timeout": _go_duration(timeout)},
                timeout=timeout + CLIENT_SLACK,
            )
        except ipfs_errors.Error as exc:
            if _is_deadline(exc):
                raise ContentError(
                    f"could not pin {cid}: its blocks did not all arrive within {timeout:.1f} s; "
                    "make sure a peer holding it is connected"
                ) from exc
            raise ContentError(f"Kubo could not pin {cid}: {exc}") from exc

    def has_local(self, cid: Cid | str) -> bool:
        cid = self._validated(cid)
        try:
            stat = self._request(
                "/files/stat",
                (f"/ipfs/{cid}",),
                opts={"with-local": "true"},
                offline=True,
            )
        except ipfs_errors.ErrorResponse as exc:
            if "not found" in str(exc):
                return False
            raise ContentError(f"Kubo could not inspect {cid}: {exc}") from exc
        return bool(stat[0].get("Local"))

    def connect(self, multiaddr: str) -> None:
        if "/p2p/" not in multiaddr:
            raise ConfigError(
                f"peer address {multiaddr!r} lacks /p2p/<peer id>; use the full swarm "
                "multiaddr the peer advertises"
            )
        try:
            self._request(
                "/swarm/connect",
                (multiaddr,),
                opts={"timeout": _go_duration(CONNECT_TIMEOUT)},
                timeout=CONNECT_TIMEOUT + CLIENT_SLACK,
            )
        except ipfs_errors.Error as exc:
            raise ServiceUnavailableError(
                f"cannot connect to peer {multiaddr}: {exc}; check that the peer is running, "
                "that the address is right, and that both nodes use the same swarm key"
            ) from exc

    def swarm_peer_count(self) -> int:
        try:
            answer = self._request("/swarm/peers")
        except ipfs_errors.Error as exc:
            raise ServiceUnavailableError(
                f"Kubo at {self.api_multiaddr} cannot list its swarm peers ({exc}); is the "
                "daemon running online?"
            ) from exc
        peers = answer[0].get("Peers") if answer else None
        return len(peers) if isinstance(peers, list) else 0

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def __repr__(self) -> str:
        return f"KuboContentStore({self.api_multiaddr!r}, peer_id={self._peer_id!r})"
