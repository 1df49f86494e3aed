"""``fedchain kubo``: the swarm key and the private settings of a production Kubo node."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedchain.cli import app
from fedchain.errors import ConfigError
from fedchain.localnet.devnet import find_ipfs
from fedchain.localnet.kubo_daemon import validate_swarm_key
from fedchain.ops.kubo_setup import configure_kubo, write_swarm_key


def test_swarm_key_is_owner_only_and_never_replaced(tmp_path: Path) -> None:
    key = write_swarm_key(tmp_path / "swarm.key")
    assert validate_swarm_key(key.read_bytes()) == key.read_bytes()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    with pytest.raises(ConfigError, match="already exists; a federation has one swarm key"):
        write_swarm_key(key)
    assert key.read_bytes() == before


def test_bad_inputs_are_named_before_anything_is_written(tmp_path: Path) -> None:
    repo = tmp_path / "ipfs"
    with pytest.raises(ConfigError, match=r"swarm key .*missing\.key cannot be read"):
        configure_kubo(Path("ipfs"), repo, tmp_path / "missing.key", "10.231.0.11")
    key = write_swarm_key(tmp_path / "swarm.key")
    with pytest.raises(ConfigError, match=r"--swarm-host .0\.0\.0\.0. is not this host.s own"):
        configure_kubo(Path("ipfs"), repo, key, "0.0.0.0")
    assert not repo.exists()


def test_configure_writes_the_private_network_settings(tmp_path: Path) -> None:
    key = write_swarm_key(tmp_path / "swarm.key")
    other = write_swarm_key(tmp_path / "other.key")
    repo_b = tmp_path / "b"
    b_addr = configure_kubo(find_ipfs(), repo_b, other, "10.231.0.12")
    repo = tmp_path / "a"
    address = configure_kubo(find_ipfs(), repo, key, "10.231.0.11", peers=[b_addr])
    assert address.startswith("/ip4/10.231.0.11/tcp/4001/p2p/12D3KooW")
    config = json.loads((repo / "config").read_text(encoding="utf-8"))
    assert config["Addresses"]["API"] == "/ip4/127.0.0.1/tcp/5001"
    assert config["Addresses"]["Swarm"] == ["/ip4/10.231.0.11/tcp/4001"]
    assert config["Bootstrap"] == [] and config["Routing"]["Type"] == "none"
    assert config["Peering"]["Peers"][0]["Addrs"] == ["/ip4/10.231.0.12/tcp/4001"]
    assert (repo / "swarm.key").read_bytes() == key.read_bytes()
    # Run again through the CLI (e.g. once the other members' addresses are known): same node.
    args = ["kubo", "configure", "--repo", str(repo), "--swarm-key", str(key)]
    result = CliRunner().invoke(app, [*args, "--swarm-host", "10.231.0.11"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].split()[-1] == address


def test_cli_swarm_key_says_what_to_do_with_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["kubo", "swarm-key", str(tmp_path / "swarm.key")])
    assert result.exit_code == 0, result.output
    assert "give it to each institution over a private channel" in result.output
