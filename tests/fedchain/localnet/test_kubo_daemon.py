"""KuboDaemon: configuration, lifecycle and isolation of a real Kubo 0.41 daemon."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from fedchain.errors import ConfigError, ServiceUnavailableError, ToolchainError
from fedchain.localnet.kubo_daemon import (
    SWARM_KEY_HEADER,
    KuboDaemon,
    generate_swarm_key,
    validate_swarm_key,
)
from fedchain.localnet.procs import free_port, port_is_open, wait_until
from peer.content.kubo import KuboContentStore
from tests.peer.content.conformance import MiB
from tests.peer.content.kubo_harness import cli, ipfs_binary, new_daemon

# -- swarm keys (pure) -----------------------------------------------------------


def test_generated_swarm_key_has_the_psk_v1_format():
    key = generate_swarm_key()
    lines = key.decode("ascii").splitlines()
    assert key.startswith(SWARM_KEY_HEADER)
    assert lines[:2] == ["/key/swarm/psk/1.0.0/", "/base16/"]
    assert re.fullmatch(r"[0-9a-f]{64}", lines[2])
    assert key.endswith(b"\n")
    assert validate_swarm_key(key) == key


def test_generated_swarm_keys_differ():
    assert len({generate_swarm_key() for _ in range(20)}) == 20


@pytest.mark.parametrize(
    "bad",
    [
        b"",
        b"/key/swarm/psk/1.0.0/\n/base16/\n" + b"ab" * 31,
        b"/key/swarm/psk/1.0.0/\n/base64/\n" + b"ab" * 32,
        b"/key/swarm/psk/1.0.0/\n/base16/\n" + b"zz" * 32,
    ],
    ids=["empty", "short", "base64", "not-hex"],
)
def test_malformed_swarm_keys_are_config_errors(bad: bytes):
    with pytest.raises(ConfigError, match="swarm key"):
        validate_swarm_key(bad)
    with pytest.raises(ConfigError):
        KuboDaemon(Path("ipfs"), Path("repo"), api_port=1, swarm_port=2, swarm_key=bad)


def test_missing_binary_is_a_toolchain_error(tmp_path: Path):
    daemon = KuboDaemon(
        tmp_path / "no-such-ipfs", tmp_path / "repo", api_port=1, swarm_port=2, swarm_key=None
    )
    with pytest.raises(ToolchainError, match="install-kubo"):
        daemon.init()


# -- real daemons ----------------------------------------------------------------


@pytest.fixture(scope="module")
def ipfs_bin() -> Path:
    return ipfs_binary()


@pytest.fixture
def daemon(ipfs_bin: Path, tmp_path: Path) -> Iterator[KuboDaemon]:
    d = new_daemon(ipfs_bin, tmp_path / "repo", generate_swarm_key())
    yield d
    d.stop()


def _config_show(ipfs_bin: Path, daemon: KuboDaemon) -> dict[str, object]:
    shown: dict[str, object] = json.loads(cli(ipfs_bin, daemon, "config", "show"))
    return shown


def test_init_writes_a_private_loopback_configuration(ipfs_bin: Path, daemon: KuboDaemon):
    config = _config_show(ipfs_bin, daemon)  # parsed by Kubo itself
    assert config["Addresses"] == {
        "API": f"/ip4/127.0.0.1/tcp/{daemon.api_port}",
        "Gateway": [],
        "Swarm": [f"/ip4/127.0.0.1/tcp/{daemon.swarm_port}"],
        "Announce": [],
        "AppendAnnounce": [],
        "NoAnnounce": [],
    }
    assert config["Bootstrap"] == []
    assert config["Discovery"] == {"MDNS": {"Enabled": False}}
    assert config["AutoConf"] == {"Enabled": False}
    assert config["AutoTLS"] == {"Enabled": False}
    routing = config["Routing"]
    assert isinstance(routing, dict) and routing["Type"] == "none"
    swarm = config["Swarm"]
    assert isinstance(swarm, dict)
    assert swarm["RelayClient"] == {"Enabled": False}
    assert swarm["RelayService"] == {"Enabled": False}
    assert swarm["Transports"]["Network"]["QUIC"] is False
    plugins = config["Plugins"]
    assert isinstance(plugins, dict)
    assert plugins["Plugins"]["telemetry"]["Config"]["Mode"] == "off"


def test_secrets_in_the_repo_are_owner_only(daemon: KuboDaemon):
    key_file = daemon.repo / "swarm.key"
    assert key_file.read_bytes() == daemon.swarm_key
    for path in (key_file, daemon.config_path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_init_is_idempotent_and_applies_new_ports(ipfs_bin: Path, daemon: KuboDaemon):
    peer_id = daemon.peer_id
    again = KuboDaemon(
        ipfs_bin,
        daemon.repo,
        api_port=free_port(),
        swarm_port=free_port(),
        swarm_key=daemon.swarm_key,
    )
    again.init()
    again.init()
    assert again.peer_id == peer_id
    config = _config_show(ipfs_bin, again)
    addresses = config["Addresses"]
    assert isinstance(addresses, dict)
    assert addresses["API"] == f"/ip4/127.0.0.1/tcp/{again.api_port}"


def test_init_refuses_to_silently_leave_the_private_network(ipfs_bin: Path, daemon: KuboDaemon):
    public = KuboDaemon(ipfs_bin, daemon.repo, api_port=1, swarm_port=2, swarm_key=None)
    with pytest.raises(ConfigError, match=r"swarm\.key"):
        public.init()


def _api_id(daemon: KuboDaemon) -> dict[str, object]:
    request = urllib.request.Request(f"{daemon.api_url}/id", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        answer: dict[str, object] = json.loads(response.read())
    return answer


def _listening_sockets(pid: int) -> set[tuple[str, str, int]]:
    """(protocol, local ip, port) of the listening/bound sockets held by ``pid``."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd) if fd.is_symlink() else ""
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            listening = state == "0A" if proto.startswith("tcp") else True
            if inode in inodes and listening:
                ip_hex, port_hex = local.split(":")
                if len(ip_hex) == 8:
                    ip = socket.inet_ntop(socket.AF_INET, bytes.fromhex(ip_hex)[::-1])
                else:
                    ip = f"ipv6:{ip_hex}"
                found.add((proto, ip, int(port_hex, 16)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_running_daemon_listens_only_on_its_two_loopback_ports(daemon: KuboDaemon):
    daemon.start()
    assert daemon.pid is not None
    assert _listening_sockets(daemon.pid) == {
        ("tcp", "127.0.0.1", daemon.api_port),
        ("tcp", "127.0.0.1", daemon.swarm_port),
    }
    identity = _api_id(daemon)
    assert identity["ID"] == daemon.peer_id
    addresses = identity["Addresses"]
    assert isinstance(addresses, list)
    assert addresses == [daemon.swarm_multiaddr]
    assert daemon.swarm_multiaddr == (
        f"/ip4/127.0.0.1/tcp/{daemon.swarm_port}/p2p/{daemon.peer_id}"
    )


def test_private_network_is_announced_in_the_log(daemon: KuboDaemon):
    daemon.start()
    log = daemon.log_path.read_text()
    assert "Swarm is limited to private network" in log
    assert "telemetry" not in log.lower()


def _port_is_free(port: int) -> bool:
    """Bindable by a new server (TIME_WAIT from our own client calls is allowed)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_stop_leaves_no_process_and_frees_both_ports(daemon: KuboDaemon):
    daemon.start()
    pid = daemon.pid
    assert pid is not None and daemon.api_responds()
    daemon.stop()
    daemon.stop()  # idempotent
    assert not daemon.is_running()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not daemon.api_responds()
    assert not port_is_open("127.0.0.1", daemon.api_port)
    assert not port_is_open("127.0.0.1", daemon.swarm_port)
    assert _port_is_free(daemon.api_port)
    assert _port_is_free(daemon.swarm_port)


def test_context_manager_starts_and_stops(ipfs_bin: Path, tmp_path: Path):
    d = new_daemon(ipfs_bin, tmp_path / "cm", None)
    with d as running:
        assert running.api_responds()
        pid = running.pid
    assert pid is not None
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_public_daemon_without_swarm_key_still_runs_isolated(ipfs_bin: Path, tmp_path: Path):
    d = new_daemon(ipfs_bin, tmp_path / "public", None)
    with d:
        assert not (d.repo / "swarm.key").exists()
        assert "Swarm is limited to private network" not in d.log_path.read_text()
        assert _api_id(d)["Addresses"] == [d.swarm_multiaddr]


def test_taken_api_port_fails_fast_and_quotes_the_daemon_log(ipfs_bin: Path, tmp_path: Path):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        d = KuboDaemon(
            ipfs_bin, tmp_path / "clash", api_port=port, swarm_port=free_port(), swarm_key=None
        )
        d.init()
        with pytest.raises(ServiceUnavailableError) as caught:
            d.start(timeout=30)
    message = str(caught.value)
    assert "exited with status" in message
    assert "address already in use" in message
    assert not d.is_running()


# -- peering: members' Kubos find each other again after a restart ------------------


def test_set_peering_writes_the_members_kubo_parses(ipfs_bin: Path, tmp_path: Path):
    key = generate_swarm_key()
    a, b, c = (new_daemon(ipfs_bin, tmp_path / name, key) for name in "abc")
    a.set_peering([a.swarm_multiaddr, b.swarm_multiaddr, c.swarm_multiaddr])
    peering = json.loads(cli(ipfs_bin, a, "config", "Peering"))
    assert peering == {
        "Peers": [
            {"ID": b.peer_id, "Addrs": [f"/ip4/127.0.0.1/tcp/{b.swarm_port}"]},
            {"ID": c.peer_id, "Addrs": [f"/ip4/127.0.0.1/tcp/{c.swarm_port}"]},
        ]
    }
    a.init()  # re-applying ports and privacy keeps the peering list
    assert json.loads(cli(ipfs_bin, a, "config", "Peering")) == peering


@pytest.mark.parametrize(
    "bad",
    [
        "/ip4/127.0.0.1/tcp/4001",
        "12D3KooWQ3YRARNgLBmpMLzdZUgU3fkSyQyubLmLMFezrv6dsjpd",
        "/ip4/127.0.0.1/tcp/4001/p2p/not-a-peer-id",
    ],
    ids=["no-peer-id", "no-transport", "bad-peer-id"],
)
def test_set_peering_refuses_malformed_addresses(daemon: KuboDaemon, bad: str):
    with pytest.raises(ConfigError, match="/p2p/<peer id>"):
        daemon.set_peering([bad])


def test_set_peering_needs_a_stopped_daemon(daemon: KuboDaemon):
    daemon.start()
    with pytest.raises(ConfigError, match="stop it before set_peering"):
        daemon.set_peering([])


REJOIN_DEADLINE = 90.0
"""Kubo's peering re-dials after a 5 s base delay with growing, jittered back-off."""


def test_restarted_daemon_rejoins_its_peers_by_itself(ipfs_bin: Path, tmp_path: Path):
    key = generate_swarm_key()
    a = new_daemon(ipfs_bin, tmp_path / "a", key)
    b = new_daemon(ipfs_bin, tmp_path / "b", key)
    for d in (a, b):
        d.set_peering([a.swarm_multiaddr, b.swarm_multiaddr])
    try:
        a.start()
        b.start()
        with KuboContentStore(a.api_multiaddr) as store_a:
            store_a.connect(b.swarm_multiaddr)
            b.stop()
            wait_until(lambda: store_a.swarm_peer_count() == 0, 30, "A noticing B is gone")
            b.start()  # same repo and ports, nobody calls connect
            with KuboContentStore(b.api_multiaddr) as store_b:
                wait_until(
                    lambda: store_b.swarm_peer_count() >= 1 and store_a.swarm_peer_count() >= 1,
                    REJOIN_DEADLINE,
                    "the restarted Kubo rejoining its peer",
                    interval=0.5,
                )
                data = os.urandom(MiB + 7)
                cid = store_a.add(data)
                assert store_b.get(cid, timeout=20) == data
    finally:
        b.stop()
        a.stop()
