"""The services' side of ``fedchain status``: the own Kubo, gossip, and the peer's records.

Checked from outside the running node, so each line says only what can be seen from here:
Kubo's RPC API and its swarm peers; whether something listens on the configured gossip port and
the bootstrap peers' ports accept TCP (the gossip links themselves are known only inside the
node); and what the node last wrote to its ``history.jsonl``.
"""

from __future__ import annotations

import re

from ipfshttpclient import exceptions as ipfs_errors

from fedchain.errors import FedchainError
from fedchain.localnet.procs import port_is_open
from fedchain.ops.status_line import Level, StatusLine
from peer.config import PeerConfig
from peer.content.kubo import KuboContentStore
from peer.records import HISTORY_FILE, History

KUBO_TIMEOUT = 5.0
TCP_TIMEOUT = 2.0
_TCP_ADDR = re.compile(r"^/(?:ip4|ip6|dns4|dns6|dns)/([^/]+)/tcp/(\d+)")


def kubo_line(cfg: PeerConfig, config_hint: str) -> StatusLine:
    """The own Kubo answers its RPC API and has swarm peers to fetch updates from."""
    api = cfg.ipfs.api
    try:
        with KuboContentStore(api, request_timeout=KUBO_TIMEOUT) as kubo:
            peers = kubo.swarm_peer_count()
            kubo_id = kubo.peer_id
    except (FedchainError, ipfs_errors.Error) as exc:
        return StatusLine(
            Level.FAIL,
            "Kubo",
            f"{_short(exc)}; start this institution's Kubo daemon, or fix ipfs.api in "
            f"{config_hint}",
        )
    if peers == 0:
        return StatusLine(
            Level.WARN,
            "Kubo",
            f"Kubo {kubo_id} at {api} answers but has no swarm peers: other institutions' "
            "updates cannot be fetched; check ipfs.swarm_peers and the swarm key",
        )
    return StatusLine(Level.OK, "Kubo", f"Kubo {kubo_id} at {api} answers, {peers} swarm peers")


def _short(exc: BaseException) -> str:
    text = str(exc).split(";")[0]
    return text if len(text) <= 160 else text[:157] + "..."


def _tcp_target(multiaddr: str) -> tuple[str, int] | None:
    found = _TCP_ADDR.match(multiaddr)
    return (found.group(1), int(found.group(2))) if found else None


def gossip_line(cfg: PeerConfig, config_hint: str) -> StatusLine:
    """Something listens on the gossip port (the node is up); bootstrap peers accept TCP."""
    g = cfg.gossip
    if not g.enabled:
        return StatusLine(
            Level.OK,
            "gossip",
            "off (gossip.enabled = false): rounds complete from the chain and IPFS",
        )
    reachable = [a for a in g.bootstrap if (t := _tcp_target(a)) and port_is_open(*t, TCP_TIMEOUT)]
    boot = (
        f"{len(reachable)}/{len(g.bootstrap)} bootstrap peers accept TCP"
        if g.bootstrap
        else "no bootstrap peers configured (others dial this one)"
    )
    if g.listen_port == 0:
        return StatusLine(
            Level.WARN,
            "gossip",
            f"gossip.listen_port is 0 (a random port), so whether the node listens cannot be "
            f"checked from outside; {boot}",
        )
    host = "127.0.0.1" if g.listen_host in ("0.0.0.0", "") else g.listen_host
    if not port_is_open(host, g.listen_port, TCP_TIMEOUT):
        return StatusLine(
            Level.FAIL,
            "gossip",
            f"nothing listens on the gossip port {host}:{g.listen_port}: the peer is not "
            f"running; start it with `fedchain peer run --config {config_hint}`",
        )
    text = f"the node listens on {host}:{g.listen_port}; {boot}"
    if g.bootstrap and not reachable:
        return StatusLine(
            Level.WARN, "gossip", text + "; check the bootstrap addresses and firewalls"
        )
    return StatusLine(Level.OK, "gossip", text)


def records_line(cfg: PeerConfig) -> StatusLine:
    """What the node last wrote to its own ``history.jsonl``."""
    path = cfg.state_dir / HISTORY_FILE
    if not path.is_file():
        return StatusLine(Level.OK, "records", f"no rounds recorded yet ({path} does not exist)")
    try:
        records = History(cfg.state_dir).records()
    except FedchainError as exc:
        return StatusLine(Level.FAIL, "records", str(exc))
    if not records:
        return StatusLine(Level.OK, "records", f"no rounds recorded yet in {path}")
    last = max(records, key=lambda r: r.round)
    text = f"{len(records)} rounds in {path}; last: round {last.round} {last.status}"
    if last.gossip is not None:
        text += f", {last.gossip.accepted} gossip messages accepted so far"
    if last.agreed is False:
        return StatusLine(
            Level.WARN,
            "records",
            text + "; this peer's aggregate differed from the agreed one (see it)",
        )
    return StatusLine(Level.OK, "records", text)
