"""``fedchain kubo``: an institution's Kubo node for the consortium's private IPFS network.

The same settings the demo, the devnet and the separate-hosts test apply
(:func:`fedchain.localnet.kubo_daemon.private_settings`), so a production node is configured
exactly like the ones the tests run: a swarm key (private network), the swarm on the host's own
address, the RPC API on loopback, and no bootstrap, routing, gateway, mDNS or relays.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from fedchain.errors import ConfigError
from fedchain.localnet.kubo_daemon import KuboDaemon, generate_swarm_key
from fedchain.localnet.placement import WELL_KNOWN_PORTS, Placement
from fedchain.private_files import PRIVATE_FILE


def write_swarm_key(path: Path) -> Path:
    """Write a new swarm key to ``path`` (owner-only); never replaces an existing file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        raise ConfigError(
            f"{path} already exists; a federation has one swarm key: keep it, or remove the "
            "file yourself to start a new private network"
        ) from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(generate_swarm_key())
    return path


def configure_kubo(
    ipfs_bin: Path,
    repo: Path,
    swarm_key: Path,
    swarm_host: str,
    *,
    swarm_port: int = WELL_KNOWN_PORTS.kubo_swarm,
    api_port: int = WELL_KNOWN_PORTS.kubo_api,
    peers: Sequence[str] = (),
) -> str:
    """Create (or update) the repo with the private settings; return its swarm multiaddr.

    ``peers`` are the other institutions' swarm multiaddrs (``/ip4/…/tcp/4001/p2p/<id>``),
    which the node keeps connected to (``Peering.Peers``). Run it while the daemon is stopped:
    Kubo reads its config only at start.
    """
    try:
        key = swarm_key.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"swarm key {swarm_key} cannot be read ({exc.strerror}); copy the consortium's "
            "swarm.key there (one key per federation, see `fedchain kubo swarm-key`)"
        ) from None
    try:
        host = Placement(address=swarm_host)
    except ConfigError:
        raise ConfigError(
            f"--swarm-host {swarm_host!r} is not this host's own IPv4 address; give the address "
            "the other institutions reach it on, e.g. 10.231.0.11"
        ) from None
    kubo = KuboDaemon(
        ipfs_bin, repo, api_port=api_port, swarm_port=swarm_port, swarm_key=key, placement=host
    )
    kubo.init()
    if peers:
        kubo.set_peering(peers)
    return kubo.swarm_multiaddr
