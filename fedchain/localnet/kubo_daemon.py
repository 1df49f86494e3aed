"""One Kubo (IPFS) daemon per institution, in a private swarm.

Hospitals must not leak which content they hold, so the daemon is configured to
talk only to peers it is told about: no bootstrap list, no DHT or delegated
routing, no mDNS, no relays, no NAT traversal, no gateway, and (with a swarm
key) a libp2p private network whose members share a pre-shared key.  Content
moves by bitswap between peers that have been connected explicitly.

Where it runs is a :class:`~fedchain.localnet.placement.Placement`: its swarm listens on the
placement's address (loopback for the demo, the host's own address on a network), while its
RPC API always stays on the host's loopback, since it can pin, delete and read everything.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from fedchain.errors import ConfigError, ServiceUnavailableError, ToolchainError
from fedchain.localnet.placement import LOCAL, LOOPBACK, Placement
from fedchain.localnet.procs import ManagedProcess

INIT_PROFILES = "test,unixfs-v1-2025"
"""``test``: no bootstrap/mDNS/AutoConf/AutoTLS (its loopback addresses are replaced below;
never use the ``server`` profile: it filters the private ranges, 10.0.0.0/8 included).
``unixfs-v1-2025``: CIDv1, raw leaves, 1 MiB chunks, so every peer derives the
same CID for the same bytes."""

_PEER_ID = re.compile(r"[1-9A-HJ-NP-Za-km-z]{46,128}")
"""A libp2p peer id as Kubo prints it (base58btc multihash)."""

SWARM_KEY_HEADER = b"/key/swarm/psk/1.0.0/\n/base16/\n"
SWARM_KEY_BYTES = 32

START_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


def generate_swarm_key() -> bytes:
    """A fresh pre-shared key for a private swarm, in Kubo's ``swarm.key`` format."""
    return SWARM_KEY_HEADER + secrets.token_hex(SWARM_KEY_BYTES).encode("ascii") + b"\n"


def validate_swarm_key(key: bytes) -> bytes:
    """Return ``key`` normalised to end in a newline, or raise ConfigError."""
    lines = key.strip().splitlines()
    if len(lines) != 3 or lines[0] != b"/key/swarm/psk/1.0.0/" or lines[1] != b"/base16/":
        raise ConfigError(
            "swarm key is not in the /key/swarm/psk/1.0.0/ + /base16/ + <64 hex digits> "
            "format; create one with generate_swarm_key()"
        )
    try:
        secret = bytes.fromhex(lines[2].decode("ascii"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"swarm key line 3 is not hexadecimal: {exc}") from exc
    if len(secret) != SWARM_KEY_BYTES:
        raise ConfigError(f"swarm key holds {len(secret)} bytes, expected {SWARM_KEY_BYTES}")
    return b"\n".join(lines) + b"\n"


def private_settings(
    api_port: int, swarm_port: int, swarm_host: str = LOOPBACK
) -> dict[str, dict[str, Any] | list[Any]]:
    """Config sections (Kubo 0.41 keys) that keep the daemon private.

    The swarm listens on ``swarm_host`` only and announces exactly that address (nothing
    learned from other interfaces or NAT); the RPC API listens on loopback only.
    """
    swarm = f"/ip4/{swarm_host}/tcp/{swarm_port}"
    return {
        "Addresses": {
            "API": f"/ip4/{LOOPBACK}/tcp/{api_port}",
            "Gateway": [],
            "Swarm": [swarm],
            "Announce": [] if swarm_host == LOOPBACK else [swarm],
            "AppendAnnounce": [],
            "NoAnnounce": [],
        },
        "Bootstrap": [],
        "Discovery": {"MDNS": {"Enabled": False}},
        "AutoConf": {"Enabled": False},
        "AutoTLS": {"Enabled": False},
        "AutoNAT": {"ServiceMode": "disabled"},
        "Routing": {"Type": "none", "DelegatedRouters": []},
        "Ipns": {"DelegatedPublishers": []},
        "DNS": {"Resolvers": {}},
        "Provide": {"Enabled": False, "DHT": {"Interval": "0s"}},
        "HTTPRetrieval": {"Enabled": False},
        "Plugins": {"Plugins": {"telemetry": {"Config": {"Mode": "off"}}}},
        "Swarm": {
            "DisableNatPortMap": True,
            "EnableHolePunching": False,
            "RelayClient": {"Enabled": False},
            "RelayService": {"Enabled": False},
            "Transports": {
                "Network": {
                    "TCP": True,
                    "QUIC": False,
                    "WebTransport": False,
                    "WebRTCDirect": False,
                    "Websocket": False,
                    "Relay": False,
                }
            },
        },
    }


def _merge(base: dict[str, Any], update: dict[str, Any]) -> None:
    """Deep-merge ``update`` into ``base`` (dicts merge, everything else replaces)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def _split_peer_address(multiaddr: str) -> tuple[str, str]:
    """``/ip4/.../tcp/N/p2p/<id>`` -> (``/ip4/.../tcp/N``, ``<id>``), or ConfigError."""
    transport, marker, peer_id = multiaddr.rpartition("/p2p/")
    if not marker or not transport.startswith("/") or not _PEER_ID.fullmatch(peer_id):
        raise ConfigError(
            f"peering address {multiaddr!r} is not a swarm multiaddr ending in /p2p/<peer id>; "
            "pass a member's address as its Kubo reports it (e.g. KuboDaemon.swarm_multiaddr)"
        )
    return transport, peer_id


class KuboDaemon:
    """Initialise, configure, start and stop one Kubo daemon.

    ``init()`` is idempotent and re-applies the port and privacy settings on an
    existing repo, so a restarted node keeps its identity and pins.
    """

    def __init__(
        self,
        ipfs_bin: Path,
        repo: Path,
        *,
        api_port: int,
        swarm_port: int,
        swarm_key: bytes | None,
        placement: Placement = LOCAL,
    ) -> None:
        """``placement``: the host it runs on; its swarm binds to the placement's address."""
        self.ipfs_bin = Path(ipfs_bin)
        self.repo = Path(repo)
        self.api_port = api_port
        self.swarm_port = swarm_port
        self.swarm_key = validate_swarm_key(swarm_key) if swarm_key is not None else None
        self.placement = placement
        self._process: ManagedProcess | None = None

    # -- addresses -----------------------------------------------------------

    @property
    def api_multiaddr(self) -> str:
        """HTTP RPC address for ipfshttpclient on the daemon's own host (its loopback)."""
        return f"/ip4/{LOOPBACK}/tcp/{self.api_port}/http"

    @property
    def api_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}/api/v0"

    @property
    def peer_id(self) -> str:
        """The node's libp2p peer id, read from the repo (needs ``init()``)."""
        ident = self._read_config().get("Identity", {})
        peer_id = ident.get("PeerID") if isinstance(ident, dict) else None
        if not isinstance(peer_id, str) or not peer_id:
            raise ConfigError(f"Kubo repo {self.repo} has no Identity.PeerID; run init()")
        return peer_id

    @property
    def swarm_multiaddr(self) -> str:
        """Address other peers dial to reach this node, including ``/p2p/<peer id>``."""
        return f"/ip4/{self.placement.address}/tcp/{self.swarm_port}/p2p/{self.peer_id}"

    @property
    def log_path(self) -> Path:
        return self.repo / "daemon.log"

    @property
    def config_path(self) -> Path:
        return self.repo / "config"

    # -- init ----------------------------------------------------------------

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["IPFS_PATH"] = str(self.repo)
        env.pop("IPFS_API", None)  # would redirect the CLI to some other daemon
        env["IPFS_TELEMETRY"] = "off"  # Kubo reports usage over the internet otherwise
        if self.swarm_key is not None:
            env["LIBP2P_FORCE_PNET"] = "1"
        else:
            env.pop("LIBP2P_FORCE_PNET", None)
        return env

    def _run_cli(self, *args: str, timeout: float = 60.0) -> str:
        argv = [str(self.ipfs_bin), *args]
        try:
            done = subprocess.run(
                argv,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except FileNotFoundError as exc:
            raise ToolchainError(
                f"Kubo binary {self.ipfs_bin} not found; run scripts/install-kubo and pass "
                "the path it prints"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise ToolchainError(f"`{' '.join(argv)}` did not finish in {timeout} s") from exc
        if done.returncode != 0:
            raise ToolchainError(
                f"`{' '.join(argv)}` (IPFS_PATH={self.repo}) failed with status "
                f"{done.returncode}: {done.stderr.decode(errors='replace').strip()}"
            )
        return done.stdout.decode(errors="replace")

    def _read_config(self) -> dict[str, Any]:
        try:
            data = json.loads(self.config_path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"Kubo repo {self.repo} is not initialised; run init()") from exc
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read Kubo config {self.config_path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"Kubo config {self.config_path} is not a JSON object")
        return data

    def _write_config(self, config: dict[str, Any]) -> None:
        """Replace the config atomically, keeping its owner-only permissions."""
        tmp = self.config_path.with_name("config.fedchain-tmp")
        tmp.write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.config_path)

    def init(self) -> None:
        """Create the repo if needed, then (re)apply ports, privacy and the swarm key."""
        if self.is_running():
            raise ConfigError(f"Kubo daemon for {self.repo} is running; stop it before init()")
        if not self.config_path.exists():
            self.repo.mkdir(parents=True, exist_ok=True)
            self._run_cli("init", "--empty-repo", f"--profile={INIT_PROFILES}")
        config = self._read_config()
        _merge(config, private_settings(self.api_port, self.swarm_port, self.placement.address))
        self._write_config(config)
        key_file = self.repo / "swarm.key"
        if self.swarm_key is not None:
            if not key_file.exists() or key_file.read_bytes() != self.swarm_key:
                tmp = key_file.with_name("swarm.key.fedchain-tmp")
                tmp.write_bytes(self.swarm_key)
                os.chmod(tmp, 0o600)
                os.replace(tmp, key_file)
        elif key_file.exists():
            raise ConfigError(
                f"Kubo repo {self.repo} has a swarm.key (private network) but no swarm key "
                "was given; pass the network's key, or delete the file to leave the network"
            )

    def set_peering(self, members: Sequence[str]) -> None:
        """Keep this daemon connected to other members' Kubos, across restarts on either side.

        ``members`` are swarm multiaddrs ending in ``/p2p/<peer id>`` (this node's
        own is skipped).  They go into the repo's ``Peering.Peers``, which Kubo
        reads at start and re-dials with back-off whenever a connection drops, so
        a restarted daemon rejoins the swarm by itself.  Call it while stopped.
        """
        if self.is_running():
            raise ConfigError(
                f"Kubo daemon for {self.repo} is running; stop it before set_peering() "
                "(Kubo reads Peering.Peers only at start)"
            )
        own = self.peer_id
        peers: dict[str, list[str]] = {}
        for multiaddr in members:
            transport, peer_id = _split_peer_address(multiaddr)
            if peer_id != own:
                peers.setdefault(peer_id, []).append(transport)
        config = self._read_config()
        config["Peering"] = {
            "Peers": [{"ID": peer_id, "Addrs": addrs} for peer_id, addrs in peers.items()]
        }
        self._write_config(config)

    # -- run -----------------------------------------------------------------

    def is_running(self) -> bool:
        return self._process is not None and self._process.is_running()

    def api_responds(self) -> bool:
        """True once the RPC API answers ``/id`` (Kubo serves it only when fully up).

        Asked from the daemon's own host, the only place its API listens.
        """
        request = urllib.request.Request(f"{self.api_url}/id", method="POST")

        def ask() -> bool:
            try:
                with urllib.request.urlopen(request, timeout=2.0) as response:
                    return bool(response.status == 200)
            except (urllib.error.URLError, OSError):
                return False

        return self.placement.call(ask)

    def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the daemon and return once its API answers."""
        if self.is_running():
            return
        if not self.config_path.exists():
            self.init()
        if self.api_responds():
            raise ServiceUnavailableError(
                f"something already answers as Kubo on {self.api_url}; stop it or choose "
                "another api_port"
            )
        self._process = ManagedProcess(
            self.placement.command([str(self.ipfs_bin), "daemon", "--migrate=true"]),
            log_path=self.log_path,
            name=f"kubo({self.repo.name})",
            env=self._env(),
        )
        self._process.start()
        try:
            self._process.wait_until(
                self.api_responds, timeout, f"Kubo API on {self.placement}, port {self.api_port}"
            )
        except BaseException:
            self._process.stop(timeout=STOP_TIMEOUT)
            self._process = None
            raise

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the daemon (SIGTERM, then SIGKILL after ``timeout``); safe to repeat."""
        if self._process is not None:
            self._process.stop(timeout=timeout)
            self._process = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def __enter__(self) -> KuboDaemon:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"KuboDaemon(repo={self.repo}, api={self.api_port}, swarm={self.swarm_port})"
