"""Gossip over py-libp2p GossipSub, run by trio in a background thread.

The peer node is synchronous, py-libp2p is trio: the host lives in its own
thread, and every public method crosses into it through the run's trio token
(``trio.from_thread``), so they are safe to call from any other thread.

Settings that differ from py-libp2p 0.8.1 defaults, and why:

* security: Noise only -- the default list also negotiates ``/plaintext/2.0.0``;
* muxer: Yamux only (fastest here, and what Kubo speaks);
* GossipSub: heartbeat 1 s (default 120 s), adaptive gossip off (it stretched
  the heartbeat of a healthy mesh to 60 s), spam protection off (it caps every
  peer, ourselves included, at 10 msg/s per topic and silently drops the rest);
* strict signing on: the publisher's peer ID is authenticated by libp2p;
* larger queues, error containment: see ``peer.gossip._pubsub``;
* validation before relay: the size limit and the optional ``validator`` run as
  py-libp2p's topic validator, so a message they refuse is neither delivered
  nor forwarded to anyone.  The validator runs in a worker thread (it may ask
  the chain), never on the trio loop; a message taking longer than
  ``VALIDATION_TIMEOUT_SECONDS`` (queueing included) is refused.

Behaviour worth knowing:

* ``listen_addrs`` reports the bound address as is: listening on ``0.0.0.0``
  advertises ``/ip4/0.0.0.0/...``; give the routable IP to be dialable.
* ``connected_peers()`` lists peers with a live connection that announced our
  topic, i.e. peers that will actually get what we publish.
* Bootstrap peers are redialled every 1-10 s (backing off) whenever they are not
  connected, so peers may start in any order and survive restarts of others.
* Messages wait for ``receive()`` in a queue of ``INBOX_CAPACITY``; overflow is
  dropped.  Rejections and drops are counted (``stats()``), logged at DEBUG one
  by one, and summarised at INFO at most once per ``stats_log_interval``.
* ``import libp2p`` sets the ``libp2p`` logger to WARNING with propagate=False
  (unless LIBP2P_DEBUG is set), so its records bypass the application's handlers.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import socket
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Final

import multiaddr
import trio
from libp2p import new_host
from libp2p.abc import IHost
from libp2p.crypto.ed25519 import create_new_key_pair as ed25519_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux
from libp2p.tools.anyio_service import background_trio_service

from fedchain.errors import ConfigError, ProtocolError, ServiceUnavailableError
from peer.gossip._pubsub import GuardedPubsub
from peer.gossip.abc import Gossip, GossipMessage
from peer.gossip.hook import REFUSED, TIMED_OUT, TOO_LARGE, Validator, rejection_reason
from peer.gossip.peer_id import check_seed, peer_id_from_seed
from peer.gossip.stats import GossipCounters, GossipStats

logger = logging.getLogger("fedchain.peer.gossip")

# Pubsub RPC frames are capped at 1 MiB; keep room for the signed envelope.
MAX_PAYLOAD_BYTES: Final = 1_000_000
GOSSIPSUB_PROTOCOLS: Final = (PROTOCOL_ID_V12, PROTOCOL_ID_V11)
MESH_DEGREE, MESH_DEGREE_LOW, MESH_DEGREE_HIGH = 6, 4, 12
HEARTBEAT_SECONDS: Final = 1
OUTBOUND_QUEUE_SIZE: Final = 1024  # per peer; libp2p default 32 drops under bursts
INBOX_CAPACITY: Final = 10_000  # messages waiting for receive(); overflow is logged
DIAL_TIMEOUT_SECONDS: Final = 5.0
REDIAL_MIN_SECONDS: Final = 1.0
REDIAL_MAX_SECONDS: Final = 10.0
START_TIMEOUT_SECONDS: Final = 60.0
CLOSE_TIMEOUT_SECONDS: Final = 15.0
HOST_CLOSE_TIMEOUT_SECONDS: Final = 5.0
VALIDATOR_THREADS: Final = 2  # signature checks hold the GIL; more threads do not help
VALIDATION_TIMEOUT_SECONDS: Final = 30.0  # libp2p default 5 s refused valid messages in floods
CONCURRENT_VALIDATIONS: Final = 64  # messages past the size check waiting for a thread
MAX_PENDING_RESULTS: Final = 4096  # validated, not yet delivered (normally 0 or 1)


class Libp2pGossip(Gossip):
    """GossipSub on one topic, with a blocking, thread-safe API."""

    def __init__(
        self,
        private_key: bytes,
        *,
        topic: str,
        listen_host: str = "127.0.0.1",
        listen_port: int = 0,
        bootstrap: Sequence[str] = (),
        max_message_bytes: int = 64 * 1024,
        validator: Validator | None = None,
        stats_log_interval: float = 60.0,
    ) -> None:
        self._seed = check_seed(private_key)
        if not topic:
            raise ConfigError("gossip topic must be a non-empty string, e.g. 'fedchain/<task>'")
        if not 0 < max_message_bytes <= MAX_PAYLOAD_BYTES:
            raise ConfigError(
                f"max_message_bytes={max_message_bytes} is out of range; use 1..{MAX_PAYLOAD_BYTES}"
                " (libp2p pubsub frames are capped at 1 MiB)"
            )
        if not stats_log_interval > 0:
            raise ConfigError(f"stats_log_interval={stats_log_interval} must be > 0 seconds")
        if not 0 <= listen_port <= 65535:
            raise ConfigError(f"listen_port={listen_port} is not a TCP port (0 picks a free one)")
        self._topic = topic
        self._max_message_bytes = max_message_bytes
        self._listen_host, self._listen_port = listen_host, listen_port
        self._listen_maddr = _tcp_multiaddr(listen_host, listen_port)
        self._peer_id = peer_id_from_seed(self._seed)
        self._bootstrap = [
            info
            for info in map(_parse_bootstrap_addr, bootstrap)
            if info.peer_id.to_base58() != self._peer_id
        ]

        self._validator = validator
        self._stats_log_interval = stats_log_interval
        self._counters = GossipCounters()
        # Validator results waiting for delivery, by (publisher, seqno); trio thread only.
        self._results: dict[tuple[bytes, bytes], object] = {}
        self._inbox: queue.Queue[GossipMessage] = queue.Queue(maxsize=INBOX_CAPACITY)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._listen_addrs: list[str] | None = None
        # Set inside the trio thread; guarded by _lock where another thread reads them.
        self._trio_token: trio.lowlevel.TrioToken | None = None
        self._stop_event: trio.Event | None = None
        self._host: IHost | None = None
        self._pubsub: GuardedPubsub | None = None
        self._own_id_bytes = ID.from_base58(self._peer_id).to_bytes()

    # ----------------------------------------------------------------- public API

    @property
    def peer_id(self) -> str:
        return self._peer_id

    @property
    def listen_addrs(self) -> list[str]:
        if self._listen_addrs is None:
            raise ServiceUnavailableError("gossip host is not listening yet; call start() first")
        return list(self._listen_addrs)

    @property
    def is_running(self) -> bool:
        """True between a successful start() and close() (or a crash of the host)."""
        thread = self._thread
        alive = thread is not None and thread.is_alive()
        return alive and self._ready.is_set() and not self._closed

    def start(self) -> None:
        with self._lock:
            if self._closed:
                raise ServiceUnavailableError("gossip host was closed; create a new one")
            if self._thread is not None:
                raise ServiceUnavailableError("gossip host already started")
            _check_port_free(self._listen_host, self._listen_port)
            self._thread = threading.Thread(
                target=self._thread_main, name=f"gossip[{self._topic}]", daemon=True
            )
            self._thread.start()
        if not self._ready.wait(START_TIMEOUT_SECONDS):
            self.close()
            raise ServiceUnavailableError(
                f"gossip host did not start within {START_TIMEOUT_SECONDS:.0f} s"
            )
        if self._startup_error is not None:
            self.close()
            raise ServiceUnavailableError(
                f"gossip host failed to start on {self._listen_maddr}: {self._startup_error}"
            ) from self._startup_error
        if self._listen_addrs is None:
            raise ServiceUnavailableError("gossip host was closed while starting")

    def publish(self, data: bytes) -> None:
        if len(data) > self._max_message_bytes:
            raise ProtocolError(
                f"gossip message of {len(data)} bytes exceeds max_message_bytes="
                f"{self._max_message_bytes}; pin large payloads to IPFS and gossip the CID"
            )
        token = self._require_running()
        try:
            trio.from_thread.run(self._publish_in_loop, bytes(data), trio_token=token)
        except trio.RunFinishedError as error:
            raise ServiceUnavailableError("gossip host stopped before publishing") from error

    def receive(self, timeout: float) -> GossipMessage | None:
        try:
            if timeout <= 0:
                return self._inbox.get_nowait()
            return self._inbox.get(timeout=timeout)
        except queue.Empty:
            return None

    def connected_peers(self) -> list[str]:
        with self._lock:
            token = None if self._closed else self._trio_token
        if token is None or not self._ready.is_set():
            return []
        try:
            return trio.from_thread.run_sync(self._topic_peers_in_loop, trio_token=token)
        except trio.RunFinishedError:
            return []

    def stats(self) -> GossipStats:
        return self._counters.snapshot()

    def close(self) -> None:
        with self._lock:
            already_closing, self._closed = self._closed, True
            thread, token, stop_event = self._thread, self._trio_token, self._stop_event
        if thread is None:
            return
        if not already_closing and token is not None and stop_event is not None:
            with contextlib.suppress(trio.RunFinishedError):  # it stopped on its own
                token.run_sync_soon(stop_event.set)
        # Every caller waits, so that after any close() returns the port is free.
        if threading.current_thread() is not thread:
            thread.join(CLOSE_TIMEOUT_SECONDS)
            if thread.is_alive():
                logger.warning(
                    "gossip host thread still running %.0f s after close()", CLOSE_TIMEOUT_SECONDS
                )

    # ------------------------------------------------------------ trio thread side

    def _require_running(self) -> trio.lowlevel.TrioToken:
        with self._lock:
            token = None if self._closed else self._trio_token
        if token is None or not self._ready.is_set():
            raise ServiceUnavailableError("gossip host is not running; call start() first")
        return token

    def _thread_main(self) -> None:
        try:
            trio.run(self._run)
        except BaseException as error:  # a thread must not die with a traceback
            if not self._ready.is_set():
                self._startup_error = error
            elif self._closed:
                # py-libp2p may raise "Nursery is closed to new arrivals" (in an
                # ExceptionGroup) when messages still arrive while it shuts down.
                logger.debug("gossip host shutdown race ignored: %r", error)
            else:
                logger.error("gossip host stopped unexpectedly: %r", error, exc_info=error)
        finally:
            self._ready.set()

    async def _run(self) -> None:
        with self._lock:
            self._trio_token = trio.lowlevel.current_trio_token()
            self._stop_event = stop_event = trio.Event()
            if self._closed:
                return
        host = self._new_host()
        try:
            await self._serve(host, stop_event)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(HOST_CLOSE_TIMEOUT_SECONDS):
                try:
                    await host.close()
                except Exception as error:
                    logger.debug("closing the libp2p host raised %r", error)

    def _new_host(self) -> IHost:
        key_pair = ed25519_key_pair(self._seed)
        noise = NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)
        return new_host(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},
            muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
            listen_addrs=[self._listen_maddr],
        )

    async def _serve(self, host: IHost, stop_event: trio.Event) -> None:
        router = GossipSub(
            protocols=list(GOSSIPSUB_PROTOCOLS),
            degree=MESH_DEGREE,
            degree_low=MESH_DEGREE_LOW,
            degree_high=MESH_DEGREE_HIGH,
            heartbeat_interval=HEARTBEAT_SECONDS,
            adaptive_gossip_enabled=False,
            spam_protection_enabled=False,
            max_pending_messages_per_peer=OUTBOUND_QUEUE_SIZE,
        )
        pubsub = GuardedPubsub(
            host,
            router,
            deliver=self._deliver,
            outbound_queue_size=OUTBOUND_QUEUE_SIZE,
            on_outbound_drop=self._counters.outbound_dropped,
            strict_signing=True,
            validation_timeout=VALIDATION_TIMEOUT_SECONDS,
            max_concurrent_validator_count=CONCURRENT_VALIDATIONS,
        )
        if host.get_id().to_base58() != self._peer_id:  # identity.py must agree with libp2p
            raise RuntimeError(f"host peer ID {host.get_id()} != derived {self._peer_id}")
        # Our own threads rather than trio's thread cache, so close() leaves none behind.
        validator_threads = ThreadPoolExecutor(VALIDATOR_THREADS, "gossip-validator")
        try:
            async with (
                host.run(listen_addrs=[self._listen_maddr]),
                background_trio_service(pubsub),
                background_trio_service(router),
                trio.open_nursery() as nursery,
            ):
                await pubsub.wait_until_ready()
                validate = functools.partial(self._validate, host.get_id(), validator_threads)
                pubsub.set_topic_validator(self._topic, validate, True)
                await pubsub.subscribe(self._topic)
                self._host, self._pubsub = host, pubsub
                await self._first_bootstrap_round(host, stop_event)
                for info in self._bootstrap:
                    nursery.start_soon(self._keep_connected, host, info)
                nursery.start_soon(self._report_periodically)
                self._listen_addrs = [str(addr) for addr in host.get_addrs()]
                self._ready.set()
                logger.info("gossip %s listening on %s", self._peer_id, self._listen_addrs)
                await stop_event.wait()
                nursery.cancel_scope.cancel()
        finally:
            # The seen-message cache runs its own sweeper thread that pubsub never stops.
            pubsub.seen_messages.stop()
            validator_threads.shutdown(wait=True, cancel_futures=True)

    async def _first_bootstrap_round(self, host: IHost, stop_event: trio.Event) -> None:
        """Dial every bootstrap peer once, concurrently; close() cuts it short."""
        async with trio.open_nursery() as nursery:

            async def abort_on_stop() -> None:
                await stop_event.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(abort_on_stop)
            async with trio.open_nursery() as dials:
                for info in self._bootstrap:
                    dials.start_soon(self._dial, host, info, True)
            nursery.cancel_scope.cancel()

    async def _keep_connected(self, host: IHost, info: PeerInfo) -> None:
        """Redial a bootstrap peer whenever it is not connected, backing off on failure."""
        delay = REDIAL_MIN_SECONDS
        while True:
            await trio.sleep(delay)
            network = host.get_network()
            if network.get_connections(info.peer_id):
                delay = REDIAL_MIN_SECONDS
                continue
            # The swarm refuses to redial a peer for 60 s after a failed dial; we
            # pace redials ourselves, so lift that block first.
            unblock = getattr(network, "unblock_peer", None)
            if unblock is not None:
                unblock(info.peer_id)
            connected = await self._dial(host, info, False)
            delay = REDIAL_MIN_SECONDS if connected else min(delay * 2, REDIAL_MAX_SECONDS)

    async def _dial(self, host: IHost, info: PeerInfo, first: bool) -> bool:
        try:
            with trio.fail_after(DIAL_TIMEOUT_SECONDS):
                await host.connect(info)
        except Exception as error:
            log = logger.warning if first else logger.debug
            log(
                "bootstrap peer %s unreachable (%s: %s); retrying every <= %.0f s",
                info.peer_id,
                type(error).__name__,
                error,
                REDIAL_MAX_SECONDS,
            )
            return False
        logger.info("connected to bootstrap peer %s", info.peer_id)
        return True

    async def _publish_in_loop(self, data: bytes) -> None:
        pubsub = self._pubsub
        if pubsub is None or not pubsub.manager.is_running:
            raise ServiceUnavailableError("gossip pubsub service is not running")
        await pubsub.publish(self._topic, data)

    def _topic_peers_in_loop(self) -> list[str]:
        host, pubsub = self._host, self._pubsub
        if host is None or pubsub is None:
            return []
        in_topic = pubsub.peer_topics.get(self._topic, set())
        return sorted(p.to_base58() for p in host.get_connected_peers() if p in in_topic)

    async def _validate(
        self, own_id: ID, threads: ThreadPoolExecutor, forwarder: ID, msg: rpc_pb2.Message
    ) -> bool:
        """Topic validator: True lets libp2p deliver and relay ``msg``; runs per message."""
        if forwarder == own_id:
            return True  # our own publish
        sender = _peer_label(msg.from_id)
        if len(msg.data) > self._max_message_bytes:
            self._reject(sender, forwarder, TOO_LARGE, f"{len(msg.data)} bytes")
            return False
        if self._validator is None:
            self._counters.accepted()
            return True
        try:
            result = await _in_thread(threads, self._validator, sender, bytes(msg.data))
        except trio.Cancelled:  # libp2p's validation timeout, or our shutdown
            if not self._closed:
                self._reject(sender, forwarder, TIMED_OUT, "validation took too long")
            raise
        except Exception as error:
            self._reject(sender, forwarder, rejection_reason(error), str(error))
            return False
        if result is False:
            self._reject(sender, forwarder, REFUSED, "validator returned False")
            return False
        if len(self._results) >= MAX_PENDING_RESULTS:  # only if libp2p skipped deliveries
            self._results.clear()
        self._results[(msg.from_id, msg.seqno)] = result
        self._counters.accepted()
        return True

    def _reject(self, sender: str, forwarder: ID, reason: str, detail: str) -> None:
        self._counters.rejected(reason)
        logger.debug(
            "refused a gossip message from %s (forwarded by %s): %s: %s",
            sender,
            forwarder,
            reason,
            detail,
        )

    async def _report_periodically(self) -> None:
        """Log one INFO line per window in which something was rejected or dropped."""
        while True:
            await trio.sleep(self._stats_log_interval)
            line = self._counters.summary(self._stats_log_interval)
            if line is not None:
                logger.info("%s", line)

    def _deliver(self, msg: rpc_pb2.Message) -> None:
        """Pubsub sink, runs in the trio thread: queue another peer's message for receive()."""
        validated = self._results.pop((msg.from_id, msg.seqno), None)
        if msg.from_id == self._own_id_bytes:
            return
        if len(msg.data) > self._max_message_bytes:  # validators are per-topic; stay safe
            return
        message = GossipMessage(
            data=bytes(msg.data),
            sender_peer_id=ID(msg.from_id).to_base58(),
            topic=self._topic,
            validated=validated,
        )
        try:
            self._inbox.put_nowait(message)
        except queue.Full:
            self._counters.inbox_dropped()
            logger.debug(
                "gossip inbox full (%d messages): dropped a message from %s",
                INBOX_CAPACITY,
                message.sender_peer_id,
            )


async def _in_thread(threads: ThreadPoolExecutor, validator: Validator, *args: Any) -> object:
    """Run ``validator`` in one of ``threads`` without blocking the trio loop."""
    token = trio.lowlevel.current_trio_token()
    done = trio.Event()

    def wake(_: Future[object]) -> None:
        with contextlib.suppress(trio.RunFinishedError):  # the host stopped meanwhile
            token.run_sync_soon(done.set)

    future = threads.submit(validator, *args)
    future.add_done_callback(wake)
    await done.wait()
    return future.result()


def _tcp_multiaddr(host: str, port: int) -> multiaddr.Multiaddr:
    protocol = "ip6" if ":" in host else "ip4"
    try:
        return multiaddr.Multiaddr(f"/{protocol}/{host}/tcp/{port}")
    except Exception as error:
        raise ConfigError(
            f"listen_host={host!r} is not an IP address (use e.g. '127.0.0.1' or '0.0.0.0')"
        ) from error


def _check_port_free(host: str, port: int) -> None:
    """Fail fast if the port is taken.

    py-libp2p listens with SO_REUSEPORT, so a second node on the same port would
    start "successfully" and the kernel would split incoming connections between
    the two.  A probe bound without SO_REUSEPORT sees the conflict.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ServiceUnavailableError(
                f"cannot listen on {host}:{port}: {error.strerror}; another process (another "
                "fedchain node?) holds the port -- pick a free port or 0 for any"
            ) from error


def _parse_bootstrap_addr(addr: str) -> PeerInfo:
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(addr))
    except Exception as error:
        raise ConfigError(
            f"bootstrap address {addr!r} is not a libp2p multiaddr ending in /p2p/<peer id>, "
            "e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3KooW..."
        ) from error


def _peer_label(from_id: bytes) -> str:
    try:
        return ID(from_id).to_base58()
    except Exception:
        return from_id.hex()
