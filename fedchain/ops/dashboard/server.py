"""The dashboard's HTTP server: the static page and one JSON endpoint, from the standard library.

``http.server`` in a thread is enough for a page that a few people poll every ~1.5 s, and adds
no dependency to what every institution installs.  Bound to loopback by default; any other
address needs a token, given once in the URL (``?token=...``) and then kept in a same-site,
HTTP-only cookie.  Every request without the right token gets 401; tokens are compared in
constant time (``hmac.compare_digest``).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from fedchain.errors import ConfigError, ServiceUnavailableError
from fedchain.ops.dashboard.snapshot import Snapshot

log = logging.getLogger("fedchain.dashboard")

COOKIE = "fedchain_dashboard"
SNAPSHOT_PATH = "/api/snapshot"
MIN_INTERVAL = 0.5
"""Seconds a snapshot is reused: pages polling together cost the chain one read."""
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond loopback without a token."""
    if not is_loopback(host) and not token:
        raise ConfigError(
            f"the dashboard would listen on {host}, beyond this machine, without a token; "
            "give it a token (fedchain dashboard makes one when --host is not loopback) "
            "or bind to 127.0.0.1"
        )


def _static(name: str) -> bytes:
    return (resources.files("fedchain.ops.dashboard") / "static" / name).read_bytes()


class _Cache:
    """The latest snapshot, taken again at most every :data:`MIN_INTERVAL` seconds."""

    def __init__(self, take: Callable[[], Snapshot]) -> None:
        self.take = take
        self._lock = threading.Lock()
        self._at = 0.0
        self._json = b""

    def json(self) -> bytes:
        with self._lock:
            if time.monotonic() - self._at >= MIN_INTERVAL:
                self._json = self.take().to_json().encode("utf-8")
                self._at = time.monotonic()
            return self._json


class DashboardServer:
    """Serves in a background thread until :meth:`close`.  ``port`` 0 picks a free one."""

    def __init__(
        self,
        take: Callable[[], Snapshot],
        *,
        host: str = "127.0.0.1",
        port: int = 8765,
        token: str | None = None,
    ) -> None:
        check_bind(host, token)
        self.host = host
        self.token = token
        cache = _Cache(take)
        handler = type("Handler", (_Handler,), {"cache": cache, "token": token})
        try:
            self._httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise ServiceUnavailableError(
                f"the dashboard cannot listen on {host}:{port}: {exc.strerror or exc}; "
                "choose another --port or --host"
            ) from None
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="fedchain-dashboard", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The page's URL, with the token when there is one (what to open or send)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}/" + (f"?token={self.token}" if self.token else "")

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    cache: _Cache
    token: str | None
    server_version = "fedchain-dashboard"

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        given = parse_qs(url.query).get("token", [None])[0]
        if not self._authorized(given):
            self._send(HTTPStatus.UNAUTHORIZED, b"a valid token is required\n", "text/plain")
            return
        cookie = None
        if self.token and given:
            cookie = f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/"
        if url.path == SNAPSHOT_PATH:
            try:
                body = self.cache.json()
            except Exception:  # a bug in reading must not kill the server; log it
                log.exception("taking a dashboard snapshot failed")
                self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"snapshot failed\n", "text/plain")
                return
            self._send(HTTPStatus.OK, body, "application/json", cookie)
        elif url.path in STATIC:
            name, kind = STATIC[url.path]
            self._send(HTTPStatus.OK, _static(name), kind, cookie)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _authorized(self, given: str | None) -> bool:
        if not self.token:
            return True
        jar = SimpleCookie(self.headers.get("Cookie", ""))
        held = jar[COOKIE].value if COOKIE in jar else None
        expected = self.token.encode()
        return any(
            hmac.compare_digest(candidate.encode(), expected)
            for candidate in (given, held)
            if candidate
        )

    def _send(self, status: HTTPStatus, body: bytes, kind: str, cookie: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header(
            "Content-Security-Policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:",
        )
        self.send_header("X-Content-Type-Options", "nosniff")
        if cookie:
            self.send_header("Set-Cookie", cookie)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)
