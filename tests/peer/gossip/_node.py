"""Child process used by the gossip tests: one real libp2p host per OS process.

Modes:
  node     -- a Libp2pGossip driven by JSON-line commands on stdin, answering on stdout;
              with ``--members FILE`` it validates announcements against that static
              membership table (see ``StaticMembership``);
  hostile  -- a raw py-libp2p peer that sends malformed, forged and oversized pubsub
              input to a target, then a few well-formed messages; every frame it could
              not write is reported in its ``attacked`` event;
  dial     -- tries to connect to a target with a given security transport only.

Every mode exits when its stdin closes, so a crashed test leaves no orphan.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import sys
import threading
import time
from pathlib import Path
from typing import Any

STARTED_AT = time.monotonic()


def emit(event: str, **fields: Any) -> None:
    print(json.dumps({"event": event, **fields}), flush=True)


# ----------------------------------------------------------------------- node


class StaticMembership:
    """A fixed membership table standing in for the chain: one block that never changes."""

    def __init__(self, peer_ids: dict[str, str]) -> None:
        self._peer_ids = {address.lower(): peer_id for address, peer_id in peer_ids.items()}

    def is_member(self, address: str) -> bool:
        return address.lower() in self._peer_ids

    def peer_id_of(self, address: str) -> str:
        return self._peer_ids.get(address.lower(), "")

    def block_number(self) -> int:
        return 1


def announcement_validator(members_file: str) -> Any:
    """Validator for the federation described in ``members_file`` (JSON)."""
    from peer.announcements import Domain
    from peer.gossip.validation import AnnouncementValidator

    table = json.loads(Path(members_file).read_text())
    domain = Domain(chain_id=table["chain_id"], contract=table["contract"])
    return AnnouncementValidator(domain, table["task_id"], StaticMembership(table["members"]))


def stats_event(gossip: Any) -> dict[str, Any]:
    stats = gossip.stats()
    with Path("/proc/self/status").open() as status:
        rss_kb = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return {
        "accepted": stats.accepted,
        "rejected": dict(stats.rejected),
        "inbox_dropped": stats.inbox_dropped,
        "outbound_dropped": stats.outbound_dropped,
        "rss_mb": rss_kb / 1024,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def run_node(args: argparse.Namespace) -> None:
    from peer.gossip.libp2p_gossip import Libp2pGossip

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    imported_at = time.monotonic()
    gossip = Libp2pGossip(
        bytes.fromhex(args.seed),
        topic=args.topic,
        listen_port=args.port,
        bootstrap=args.bootstrap,
        max_message_bytes=args.max_bytes,
        validator=announcement_validator(args.members) if args.members else None,
        stats_log_interval=args.stats_interval,
    )
    gossip.start()
    emit(
        "ready",
        peer_id=gossip.peer_id,
        addrs=gossip.listen_addrs,
        import_s=imported_at - STARTED_AT,
        startup_s=time.monotonic() - STARTED_AT,
    )
    inbox = Inbox(gossip)
    for line in sys.stdin:
        command = json.loads(line)
        name = command["cmd"]
        if name == "wait_peers":
            deadline = time.monotonic() + command["timeout"]
            peers = gossip.connected_peers()
            while len(peers) < command["n"] and time.monotonic() < deadline:
                time.sleep(0.05)
                peers = gossip.connected_peers()
            emit("peers", peers=peers)
        elif name == "publish":
            for index in range(command["count"]):
                payload = {"tag": command["tag"], "i": index, "sent": time.time()}
                gossip.publish(json.dumps(payload).encode())
                time.sleep(command.get("interval", 0))
            emit("published", count=command["count"])
        elif name == "publish_hex":
            started = time.monotonic()
            sent = []
            for payload in command["payloads"]:
                gossip.publish(bytes.fromhex(payload))
                sent.append(time.time())
            emit("published", sent=sent, seconds=time.monotonic() - started)
        elif name == "stats":
            emit("stats", **stats_event(gossip))
        elif name == "collect":
            emit("received", messages=inbox.take(command["count"], command["timeout"]))
        elif name == "close":
            break
    inbox.stop()
    gossip.close()
    gossip.close()  # idempotent
    others = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    emit("closed", threads=others)


class Inbox:
    """Receives on its own thread (as the peer node would) and timestamps on arrival."""

    def __init__(self, gossip: Any) -> None:
        self._gossip = gossip
        self._messages: list[dict[str, Any]] = []
        self._taken = 0
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-inbox")
        self._thread.start()

    def _run(self) -> None:
        while not self._stopping.is_set():
            message = self._gossip.receive(timeout=0.1)
            if message is None:
                continue
            record = {
                "validated": type(message.validated).__name__,
                "sender": message.sender_peer_id,
                "topic": message.topic,
                "data_hex": message.data.hex(),
                "received": time.time(),
            }
            with self._changed:
                self._messages.append(record)
                self._changed.notify_all()

    def take(self, count: int, timeout: float) -> list[dict[str, Any]]:
        """Messages not taken before, waiting until ``count`` are there or ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: len(self._messages) - self._taken >= count, timeout)
            batch = self._messages[self._taken : self._taken + count]
            self._taken += len(batch)
            return batch

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()


# -------------------------------------------------------------------- hostile


def run_hostile(args: argparse.Namespace) -> None:
    import trio

    trio.run(hostile_main, args)


async def hostile_main(args: argparse.Namespace) -> None:
    import multiaddr
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.peer.id import ID
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, GossipSub
    from libp2p.pubsub.pb import rpc_pb2
    from libp2p.pubsub.pubsub import Pubsub
    from libp2p.pubsub.validators import PUBSUB_SIGNING_PREFIX
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
    from libp2p.stream_muxer.yamux.yamux import Yamux
    from libp2p.tools.anyio_service import background_trio_service
    from libp2p.utils.varint import encode_uvarint, encode_varint_prefixed

    key_pair = create_new_key_pair(os.urandom(32))
    host = new_host(
        key_pair=key_pair,
        sec_opt={NOISE: NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)},
        muxer_opt={TProtocol(YAMUX): Yamux},
    )
    router = GossipSub(
        protocols=[PROTOCOL_ID_V11],
        degree=6,
        degree_low=4,
        degree_high=12,
        heartbeat_interval=1,
        adaptive_gossip_enabled=False,
        spam_protection_enabled=False,
    )
    pubsub = Pubsub(host, router, strict_signing=True)
    target = info_from_p2p_addr(multiaddr.Multiaddr(args.target))
    my_id = host.get_id()
    seqno = iter(range(1_000_000, 2_000_000))

    def message(data: bytes, from_id: bytes, sign: bool) -> Any:
        msg = rpc_pb2.Message(
            data=data,
            topicIDs=[args.topic],
            from_id=from_id,
            seqno=next(seqno).to_bytes(8, "big"),
        )
        if sign:
            msg.signature = key_pair.private_key.sign(
                PUBSUB_SIGNING_PREFIX.encode() + msg.SerializeToString()
            )
            msg.key = key_pair.public_key.serialize()
        return msg

    send_errors: list[str] = []

    async def send_raw(name: str, frame: bytes) -> None:
        """Write one frame on a fresh pubsub stream and record any failure to do so.

        The target may reset the stream once it has read the frame, so an error on
        closing is expected; failing to open or write means the attack never
        reached the target, which the test must see.
        """
        try:
            with trio.fail_after(5):
                stream = await host.new_stream(target.peer_id, [PROTOCOL_ID_V11])
                await stream.write(frame)
        except Exception as error:
            send_errors.append(f"{name}: {error!r}")
            return
        await trio.sleep(0.3)
        try:
            await stream.close()
        except Exception as error:
            print(f"{name}: stream closed by the target: {error!r}", file=sys.stderr)

    def rpc_frame(*messages: Any) -> bytes:
        return encode_varint_prefixed(rpc_pb2.RPC(publish=list(messages)).SerializeToString())

    impersonated = ID.from_base58(args.impersonate).to_bytes()
    bad_key_message = message(b"BAD-KEY", b"\x01\x02not-a-peer-id", sign=False)
    bad_key_message.key = b"\xde\xad\xbe\xef"
    bad_key_message.signature = b"\x00" * 64
    attacks = {
        # signing key does not match the claimed publisher
        "forged": rpc_frame(message(b"FORGED", impersonated, sign=True)),
        # no signature at all
        "unsigned": rpc_frame(message(b"UNSIGNED", my_id.to_bytes(), sign=False)),
        # undecodable public key and peer ID
        "bad key": rpc_frame(bad_key_message),
        # not protobuf: a field claiming more bytes than the frame holds
        "not protobuf": encode_varint_prefixed(b"\x0a\xff\xff\xff\x0f" + os.urandom(32)),
        # length prefix above the 1 MiB pubsub frame limit
        "oversized frame": encode_uvarint(2 * 1024 * 1024) + os.urandom(1024),
    }

    async with (
        host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]),
        background_trio_service(pubsub),
        background_trio_service(router),
    ):
        await pubsub.wait_until_ready()
        await pubsub.subscribe(args.topic)
        await host.connect(target)
        await pubsub.wait_for_peer(target.peer_id, timeout=15)
        await pubsub.wait_for_subscription(target.peer_id, args.topic, timeout=15)
        await router.wait_for_mesh(target.peer_id, args.topic, timeout=15)
        # properly signed but larger than the target accepts
        await pubsub.publish(args.topic, b"O" * (args.max_bytes + 1))
        for name, frame in attacks.items():
            await send_raw(name, frame)
        await trio.sleep(2)  # let both sides re-register the pubsub streams
        await pubsub.wait_for_peer(target.peer_id, timeout=15)
        good = [b"GOOD-1", bytes(range(256)) * 4, b"M" * args.max_bytes, b"GOOD-2"]
        for payload in good:
            await pubsub.publish(args.topic, payload)
            await trio.sleep(0.2)
        emit(
            "attacked",
            peer_id=my_id.to_base58(),
            good_hex=[p.hex() for p in good],
            attacks=sorted(attacks),
            send_errors=send_errors,
        )
        await trio.to_thread.run_sync(sys.stdin.read)  # until the test closes stdin


# ----------------------------------------------------------------------- dial


def run_dial(args: argparse.Namespace) -> None:
    import trio

    for security in args.security:
        ok, error = trio.run(dial_once, args.target, security)
        emit("dial", security=security, ok=ok, error=error)


async def dial_once(target_addr: str, security: str) -> tuple[bool, str]:
    import multiaddr
    import trio
    from libp2p import new_host
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.crypto.x25519 import create_new_key_pair as x25519_key_pair
    from libp2p.custom_types import TProtocol
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from libp2p.security.noise.transport import PROTOCOL_ID as NOISE
    from libp2p.security.noise.transport import Transport as NoiseTransport
    from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX
    from libp2p.stream_muxer.yamux.yamux import Yamux

    key_pair = create_new_key_pair(os.urandom(32))
    transports: dict[str, Any] = {
        "plaintext": {TProtocol(PLAINTEXT_PROTOCOL_ID): InsecureTransport(key_pair)},
        "noise": {NOISE: NoiseTransport(key_pair, noise_privkey=x25519_key_pair().private_key)},
    }
    host = new_host(
        key_pair=key_pair, sec_opt=transports[security], muxer_opt={TProtocol(YAMUX): Yamux}
    )
    target = info_from_p2p_addr(multiaddr.Multiaddr(target_addr))
    async with host.run(listen_addrs=[multiaddr.Multiaddr("/ip4/127.0.0.1/tcp/0")]):
        try:
            with trio.fail_after(10):
                await host.connect(target)
        except Exception as error:
            return False, repr(error)
        return target.peer_id in host.get_connected_peers(), ""


def main() -> None:
    parser = argparse.ArgumentParser()
    modes = parser.add_subparsers(dest="mode", required=True)
    node = modes.add_parser("node")
    node.add_argument("--seed", required=True)
    node.add_argument("--topic", required=True)
    node.add_argument("--port", type=int, default=0)
    node.add_argument("--bootstrap", action="append", default=[])
    node.add_argument("--max-bytes", type=int, default=64 * 1024)
    node.add_argument("--members", help="JSON membership table; validates announcements")
    node.add_argument("--stats-interval", type=float, default=60.0)
    hostile = modes.add_parser("hostile")
    hostile.add_argument("--target", required=True)
    hostile.add_argument("--topic", required=True)
    hostile.add_argument("--max-bytes", type=int, required=True)
    hostile.add_argument("--impersonate", required=True)
    dial = modes.add_parser("dial")
    dial.add_argument("--target", required=True)
    dial.add_argument("--security", action="append", choices=["plaintext", "noise"])
    args = parser.parse_args()
    {"node": run_node, "hostile": run_hostile, "dial": run_dial}[args.mode](args)


if __name__ == "__main__":
    main()
