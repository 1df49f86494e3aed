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
"""

from __future__ import annotations

import hashlib
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import ipfshttpclient
from ipfshttpclient import exceptions as ipfs_errors
from ipfshttpclient import multipart

from fedchain.errors import ConfigError, ContentError, ServiceUnavailableError
from peer.content.abc import DEFAULT_PIN_TIMEOUT, ContentStore
from peer.content.cid import CODEC_RAW, cid_codec, cid_to_bytes, digest_of_cid

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
                f"kubo_api {api_multiaddr!r} is not a valid multiaddr "
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
                offline=offline,
                timeout=timeout if timeout is not None else self.request_timeout,
                data=data,
                headers=dict(headers) if headers is not None else None,
            )
        except ipfs_errors.ConnectionError as exc:
            reason = "connection refused" if "refused" in str(exc) else str(exc)[:200]
            raise ServiceUnavailableError(
                f"Kubo RPC API at {self.api_multiaddr} is not reachable ({reason}); start the "
                "Kubo daemon, or fix `kubo_api` in the node config to point at it"
            ) from exc

    @staticmethod
    def _validated(cid: str) -> str:
        cid_to_bytes(cid)  # raises ContentError naming the CID if malformed
        return cid

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

    def get(self, cid: str, *, timeout: float) -> bytes:
        self._validated(cid)
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        deadline = time.monotonic() + timeout

        def remaining() -> float:
            return deadline - time.monotonic()

        def fail(reason: str) -> ContentError:
            return ContentError(
                f"could not fetch {cid} within {timeout:.1f} s ({reason}); make sure a peer "
                "holding it is connected"
            )

        try:
            stat = self._request(
                "/files/stat",
                (f"/ipfs/{cid}",),
                opts={"timeout": _go_duration(remaining())},
                timeout=remaining() + CLIENT_SLACK,
            )
            expected = int(stat[0]["Size"])
            data = self._request(
                "/cat",
                (cid,),
                opts={"timeout": _go_duration(remaining())},
                decoder="none",
                timeout=remaining() + CLIENT_SLACK,
            )
        except ipfs_errors.Error as exc:
            if _is_deadline(exc):
                raise fail("timed out") from exc
            raise ContentError(f"Kubo could not read {cid}: {exc}") from exc
        if not isinstance(data, bytes) or len(data) != expected:
            got = len(data) if isinstance(data, bytes) else 0
            raise fail(f"only {got} of {expected} bytes arrived")
        if cid_codec(cid) == CODEC_RAW and hashlib.sha256(data).digest() != digest_of_cid(cid):
            raise ContentError(f"content returned for {cid} does not hash to that CID")
        return data

    def pin(self, cid: str, *, timeout: float = DEFAULT_PIN_TIMEOUT) -> None:
        self._validated(cid)
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

    def has_local(self, cid: str) -> bool:
        self._validated(cid)
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

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._client.close()

    def __repr__(self) -> str:
        return f"KuboContentStore({self.api_multiaddr!r}, peer_id={self._peer_id!r})"
