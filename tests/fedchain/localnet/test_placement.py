"""Placements without namespaces (the namespaced path runs in tests/e2e/test_separate_hosts.py)."""

from __future__ import annotations

import pytest

from fedchain.errors import ConfigError, ToolchainError
from fedchain.localnet.kubo_daemon import private_settings
from fedchain.localnet.placement import LOCAL, WELL_KNOWN_PORTS, Placement


def test_local_placement_runs_commands_and_calls_as_they_are() -> None:
    assert LOCAL.address == "127.0.0.1" and not LOCAL.own_host
    assert LOCAL.command(["anvil", "--port", "1"]) == ["anvil", "--port", "1"]
    assert LOCAL.call(lambda: 42) == 42


def test_a_host_of_its_own_runs_commands_through_ip_netns_exec() -> None:
    host = Placement(address="10.231.0.11", netns="fs1-cleveland")
    assert host.own_host
    assert host.command(["ipfs", "daemon"]) == [
        "ip", "netns", "exec", "fs1-cleveland", "ipfs", "daemon",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("hospital.example", "not an IP address"),
        ("0.0.0.0", "cannot be dialled"),
        ("::1", "cannot be dialled"),
    ],
)
def test_an_undialable_address_is_one_clear_error(address: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Placement(address=address)


def test_a_namespace_name_is_checked_and_a_missing_namespace_named() -> None:
    with pytest.raises(ConfigError, match="namespace name"):
        Placement(address="10.231.0.11", netns="../etc")
    ghost = Placement(address="10.231.0.11", netns="fs0-does-not-exist")
    with pytest.raises(ToolchainError, match="fs0-does-not-exist cannot be opened"):
        ghost.call(lambda: None)


def test_kubo_listens_and_announces_on_the_host_address_but_keeps_its_api_on_loopback() -> None:
    lan = private_settings(WELL_KNOWN_PORTS.kubo_api, WELL_KNOWN_PORTS.kubo_swarm, "10.231.0.11")
    addresses = lan["Addresses"]
    assert isinstance(addresses, dict)
    assert addresses["API"] == "/ip4/127.0.0.1/tcp/5001"
    assert addresses["Swarm"] == addresses["Announce"] == ["/ip4/10.231.0.11/tcp/4001"]
    local = private_settings(5001, 4001)["Addresses"]
    assert isinstance(local, dict) and local["Announce"] == []
