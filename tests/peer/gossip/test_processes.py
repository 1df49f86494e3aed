"""Gossip between real OS processes on loopback (one libp2p host per process)."""

from __future__ import annotations

import json
import socket
import statistics
from typing import Any

from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from tests.peer.gossip.conftest import STARTUP_TIMEOUT, PeerProcess

TOPIC = "fedchain/test-gossip"


def node_args(seed: bytes, *bootstrap: str, port: int = 0, max_bytes: int = 64 * 1024) -> list[str]:
    args = ["node", "--seed", seed.hex(), "--topic", TOPIC, "--port", str(port)]
    args += ["--max-bytes", str(max_bytes)]
    for addr in bootstrap:
        args += ["--bootstrap", addr]
    return args


def free_tcp_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def close_cleanly(peer: PeerProcess) -> None:
    closed = peer.request("closed", 30, cmd="close")
    assert closed["threads"] == [], closed
    assert peer.process.wait(timeout=20) == 0


def test_three_processes_receive_all_messages_from_the_others(spawn: Any) -> None:
    per_peer = 20
    seeds = [generate_ed25519_seed() for _ in range(3)]
    expected_ids = [peer_id_from_seed(seed) for seed in seeds]
    hub = spawn(*node_args(seeds[0]))
    hub_ready = hub.expect("ready", STARTUP_TIMEOUT)
    # The running host reports the peer ID computed from the seed alone.
    assert hub_ready["peer_id"] == expected_ids[0]
    assert hub_ready["addrs"][0].endswith(f"/p2p/{expected_ids[0]}")
    # Spokes know only the hub, so hub relays spoke-to-spoke messages.
    spokes = [spawn(*node_args(seed, hub_ready["addrs"][0])) for seed in seeds[1:]]
    peers = [hub, *spokes]
    ready = [hub_ready] + [spoke.expect("ready", STARTUP_TIMEOUT) for spoke in spokes]
    for info, expected_id in zip(ready, expected_ids, strict=True):
        assert info["peer_id"] == expected_id
        port = int(info["addrs"][0].split("/tcp/")[1].split("/")[0])
        assert port > 0

    for peer, needed in zip(peers, (2, 1, 1), strict=True):
        assert len(peer.request("peers", 40, cmd="wait_peers", n=needed, timeout=30)["peers"]) == (
            needed
        )
    for index, peer in enumerate(peers):
        peer.send(cmd="publish", count=per_peer, tag=f"p{index}")
    for peer in peers:
        peer.expect("published", 30)

    latencies: list[float] = []
    for index, peer in enumerate(peers):
        messages = peer.request("received", 60, cmd="collect", count=2 * per_peer, timeout=30)[
            "messages"
        ]
        got = set()
        for message in messages:
            payload = json.loads(bytes.fromhex(message["data_hex"]))
            sender = int(payload["tag"][1:])
            assert message["sender"] == expected_ids[sender], "sender must be the publisher"
            assert message["topic"] == TOPIC
            got.add((sender, payload["i"]))
            latencies.append(message["received"] - payload["sent"])
        others = [other for other in range(3) if other != index]
        assert got == {(other, i) for other in others for i in range(per_peer)}
        assert len(messages) == len(got), "no duplicates, no echo of own messages"

    startup = [info["startup_s"] for info in ready]
    cuts = statistics.quantiles(latencies, n=20)
    print(
        f"\ngossip 3 processes: startup {min(startup):.2f}-{max(startup):.2f} s, "
        f"delivery p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {cuts[18] * 1000:.0f} ms over {len(latencies)} deliveries"
    )
    for peer in peers:
        close_cleanly(peer)


def test_peer_started_before_its_bootstrap_peer_connects_when_it_comes_up(spawn: Any) -> None:
    early_seed, late_seed = generate_ed25519_seed(), generate_ed25519_seed()
    late_port = free_tcp_port()
    late_addr = f"/ip4/127.0.0.1/tcp/{late_port}/p2p/{peer_id_from_seed(late_seed)}"
    early = spawn(*node_args(early_seed, late_addr))
    early_ready = early.expect("ready", STARTUP_TIMEOUT)
    assert "unreachable" in early.stderr_tail(), "first dial should have failed and been logged"

    late = spawn(*node_args(late_seed, port=late_port))
    late_ready = late.expect("ready", STARTUP_TIMEOUT)
    assert late_ready["addrs"] == [late_addr]

    assert early.request("peers", 40, cmd="wait_peers", n=1, timeout=30)["peers"] == [
        late_ready["peer_id"]
    ]
    assert late.request("peers", 40, cmd="wait_peers", n=1, timeout=30)["peers"] == [
        early_ready["peer_id"]
    ]
    for sender, receiver in ((early, late), (late, early)):
        sender.request("published", 30, cmd="publish", count=1, tag="hello")
        messages = receiver.request("received", 40, cmd="collect", count=1, timeout=30)["messages"]
        assert [m["sender"] for m in messages] == [
            early_ready["peer_id"] if sender is early else late_ready["peer_id"]
        ]
    close_cleanly(early)
    close_cleanly(late)


def test_plaintext_only_client_cannot_connect(spawn: Any) -> None:
    server = spawn(*node_args(generate_ed25519_seed()))
    addr = server.expect("ready", STARTUP_TIMEOUT)["addrs"][0]
    client = spawn("dial", "--target", addr, "--security", "plaintext", "--security", "noise")
    plaintext = client.expect("dial", STARTUP_TIMEOUT)
    noise = client.expect("dial", 30)
    assert plaintext["security"] == "plaintext"
    assert plaintext["ok"] is False, plaintext
    # Control: the same client with Noise gets in, so the refusal is about plaintext.
    assert noise["security"] == "noise"
    assert noise["ok"] is True, noise
    close_cleanly(server)


def test_hostile_peer_input_does_not_stop_delivery(spawn: Any) -> None:
    max_bytes = 4096
    receiver = spawn(*node_args(generate_ed25519_seed(), max_bytes=max_bytes))
    addr = receiver.expect("ready", STARTUP_TIMEOUT)["addrs"][0]
    impersonated = peer_id_from_seed(generate_ed25519_seed())
    hostile = spawn(
        "hostile", "--target", addr, "--topic", TOPIC,
        "--max-bytes", str(max_bytes), "--impersonate", impersonated,
    )  # fmt: skip
    attacked = hostile.expect("attacked", STARTUP_TIMEOUT + 60)
    # Every attack frame was written to the receiver (else this test would prove nothing).
    assert attacked["send_errors"] == [], attacked["send_errors"]
    assert len(attacked["attacks"]) == 5

    good = attacked["good_hex"]
    messages = receiver.request("received", 40, cmd="collect", count=len(good), timeout=30)[
        "messages"
    ]
    messages += receiver.request("received", 10, cmd="collect", count=1, timeout=1.5)["messages"]
    # Only the well-formed messages arrive, byte-exact, from the hostile peer itself;
    # forged, unsigned, undecodable and oversized ones were dropped before them.
    assert sorted(m["data_hex"] for m in messages) == sorted(good)
    assert {m["sender"] for m in messages} == {attacked["peer_id"]}
    stats = receiver.request("stats", 10, cmd="stats")
    # The oversized one was refused by the size check; libp2p dropped the rest earlier.
    assert (stats["accepted"], stats["rejected"]) == (len(good), {"too large": 1}), stats
    close_cleanly(receiver)
