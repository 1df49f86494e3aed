"""Three institutions on three hosts and the chain on a fourth: nothing may assume loopback.

Each institution's Kubo and peer process run inside a network namespace of their own (its own
address and loopback, ``ip netns exec``), the chain in another; they meet only on a bridge in
10.231.0.0/24. A loopback address, a Kubo that listens or announces on loopback, a bootstrap
list or RPC URL naming 127.0.0.1: any of them breaks the federation here. The addresses, ports
and config values are the worked example of docs/deployment.md (keep both in sync).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest

from consensus.protocol import RoundStatus
from fedchain.localnet.devnet import LocalFederation
from fedchain.localnet.placement import WELL_KNOWN_PORTS
from fedchain.localnet.procs import port_is_open
from peer.config import load_config
from tests.e2e.conftest import round_status, wait_peers_exit, wait_task_done
from tests.e2e.netns import (
    CHAIN_ADDRESS,
    FIRST_INSTITUTION,
    SUBNET,
    NamespacesUnavailable,
    VirtualLan,
    remove_stale,
    why_unavailable,
)

pytestmark = pytest.mark.e2e

NAMES = ["cleveland", "hungary", "switzerland"]
PORTS = WELL_KNOWN_PORTS


def address_of(index: int) -> str:
    return f"{SUBNET}.{FIRST_INSTITUTION + index}"


@pytest.fixture
def lan() -> Iterator[VirtualLan]:
    """The virtual LAN, removed after the test whatever happens (requested before the
    federation, so it is torn down after every process in it has been stopped)."""
    reason = why_unavailable()
    if reason is not None:
        pytest.skip(f"cannot give each institution a host of its own: {reason}")
    remove_stale()
    net = VirtualLan()
    try:
        net.open()
    except NamespacesUnavailable as exc:
        pytest.skip(f"cannot give each institution a host of its own: {exc}")
    try:
        yield net
    finally:
        net.close()


def check_guide_configs(fed: LocalFederation) -> None:
    """Every address a host is told is another host's LAN address; own APIs stay on loopback."""
    for i, h in enumerate(fed.hospitals):
        cfg = load_config(h.config_path)
        assert cfg.chain.rpc_url == f"http://{CHAIN_ADDRESS}:{PORTS.chain_rpc}"
        assert cfg.ipfs.api == f"/ip4/127.0.0.1/tcp/{PORTS.kubo_api}/http"
        assert (cfg.gossip.listen_host, cfg.gossip.listen_port) == (address_of(i), PORTS.gossip)
        assert cfg.gossip.bootstrap == [
            f"/ip4/{address_of(j)}/tcp/{PORTS.gossip}/p2p/{o.identity.peer_id}"
            for j, o in enumerate(fed.hospitals[:i])
        ]
        assert cfg.ipfs.swarm_peers == [
            f"/ip4/{address_of(j)}/tcp/{PORTS.kubo_swarm}/p2p/{o.kubo.peer_id}"
            for j, o in enumerate(fed.hospitals)
            if o is not h
        ]
        kubo = json.loads(h.kubo.config_path.read_text(encoding="utf-8"))["Addresses"]
        swarm = f"/ip4/{address_of(i)}/tcp/{PORTS.kubo_swarm}"
        assert kubo["API"] == f"/ip4/127.0.0.1/tcp/{PORTS.kubo_api}"
        assert (kubo["Swarm"], kubo["Announce"]) == ([swarm], [swarm])


def test_three_institutions_on_three_hosts_complete_two_rounds(
    lan: VirtualLan, federation_factory
) -> None:
    started = time.monotonic()
    chain = lan.add_host("chain", CHAIN_ADDRESS)
    hosts = {name: lan.add_host(name, address_of(i)) for i, name in enumerate(NAMES)}
    fed: LocalFederation = federation_factory(
        NAMES, rounds=2, quorum=3, placements=hosts, chain_placement=chain
    )
    check_guide_configs(fed)
    assert fed.chain is not None and fed.chain.pid in lan.pids("chain")
    for i, h in enumerate(fed.hospitals):
        assert h.kubo.pid in lan.pids(h.name)
        # From the LAN, an institution offers its Kubo swarm, never its Kubo RPC API.
        assert port_is_open(address_of(i), PORTS.kubo_swarm)
        assert not port_is_open(address_of(i), PORTS.kubo_api)
    for name in NAMES:
        assert fed.spawn_peer(name).pid in lan.pids(name)
    wait_task_done(fed, rounds=2)
    for round_no in (1, 2):
        assert round_status(fed, round_no) is RoundStatus.FINALIZED
    wait_peers_exit(fed)
    for h in fed.hospitals:
        lines = (h.home / "state" / "history.jsonl").read_text(encoding="utf-8").splitlines()
        history = [json.loads(line) for line in lines]
        assert [e["round"] for e in history] == [1, 2]
        # Every update crossed hosts through Kubo, every aggregate was agreed, and gossip
        # carried the other hosts' announcements.
        assert all(len(e["accepted"]) == 3 and not e["left_out"] for e in history), history
        assert all(e["agreed"] is True for e in history), history
        assert history[-1]["gossip"]["accepted"] > 0, history[-1]
    print(f"separate hosts: 3 institutions, 2 rounds in {time.monotonic() - started:.1f} s")
