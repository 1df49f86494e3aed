"""``fedchain use-task`` and ``set-peers``: a founder's config (written before the contract
existed, before it knew the others' addresses) and a task upgrade change the named keys only;
everything else, comments included, stays, and a refused change leaves the file as it was."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from fedchain.cli import app
from fedchain.errors import ConfigError
from fedchain.ops.config_edit import set_peers, use_task
from fedchain.ops.init import init_institution
from fedchain.ops.peer_toml import PLACEHOLDER_CONTRACT, PeerSettings
from peer.config import load_config
from peer.gossip.peer_id import peer_id_from_seed
from peer.keystore import new_secret

CONTRACT = "0x" + "Cd" * 20


@pytest.fixture
def config(tmp_path: Path) -> Path:
    settings = PeerSettings(institution="hungary", partition="hungary", data_path=None)
    return init_institution(settings, tmp_path, "pw", scrypt_n=2**12).config


def test_a_founder_sets_the_deployed_contract_and_task(config: Path) -> None:
    before = config.read_text()
    assert load_config(config).chain.contract == PLACEHOLDER_CONTRACT
    done = use_task(config, 3, CONTRACT)
    after = config.read_text()
    assert (done.old.chain.contract, done.new.chain.contract) == (PLACEHOLDER_CONTRACT, CONTRACT)
    assert (done.old.chain.task_id, done.new.chain.task_id) == (1, 3)
    cfg = load_config(config)
    assert (cfg.chain.contract, cfg.chain.task_id) == (CONTRACT, 3)
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert changed == [
        (f'contract = "{PLACEHOLDER_CONTRACT}"', f'contract = "{CONTRACT}"'),
        ("task_id = 1", "task_id = 3"),
    ]
    assert config.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in config.parent.iterdir()) == ["hungary.toml", "keys"]


def test_an_upgrade_changes_the_task_only_and_keeps_own_edits(config: Path) -> None:
    use_task(config, 1, CONTRACT)
    text = config.read_text().replace("task_id = 1", "task_id = 1   # the first study")
    config.write_text(text.replace('rpc_url = "http://127.0.0.1:8545"', 'rpc_url = "http://h:1"'))
    use_task(config, 2)
    after = config.read_text()
    assert "task_id = 2   # the first study" in after
    cfg = load_config(config)
    assert (cfg.chain.contract, cfg.chain.task_id, cfg.chain.rpc_url) == (
        CONTRACT,
        2,
        "http://h:1",
    )


@pytest.mark.parametrize(
    ("task_id", "contract", "message"),
    [
        (0, None, r"task id 0 is not a task"),
        (2, "0x1234", r"contract '0x1234' is not an address: give 0x and 40 hex digits"),
        (2, CONTRACT + '"\nevil = "1', r"is not an address"),
    ],
)
def test_bad_values_are_refused_and_the_file_is_untouched(
    config: Path, task_id: int, contract: str | None, message: str
) -> None:
    before = config.read_bytes()
    with pytest.raises(ConfigError, match=message):
        use_task(config, task_id, contract)
    assert config.read_bytes() == before


def test_a_config_without_the_lines_is_refused_by_name(tmp_path: Path, config: Path) -> None:
    text = config.read_text()
    start, end = text.index("[chain]\n"), text.index("[ipfs]\n")
    chain = f'chain = {{ rpc_url = "http://h:1", contract = "{CONTRACT}", task_id = 1 }}\n'
    inline = chain + text[:start] + text[end:]
    config.write_text(inline)
    assert load_config(config).chain.task_id == 1
    with pytest.raises(ConfigError, match=r"no `task_id = …` line in its \[chain\] table"):
        use_task(config, 2)
    assert config.read_text() == inline
    with pytest.raises(ConfigError, match=r"missing\.toml does not exist"):
        use_task(tmp_path / "missing.toml", 2)


def test_cli_prints_the_change(config: Path) -> None:
    args = ["use-task", "--config", str(config), "--task-id", "4", "--contract", CONTRACT]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert f"contract {PLACEHOLDER_CONTRACT} -> {CONTRACT}, task 1 -> 4" in result.output


def _peer(host: str, port: int) -> str:
    return f"/ip4/{host}/tcp/{port}/p2p/{peer_id_from_seed(new_secret())}"


def test_set_peers_replaces_the_lists_and_keeps_the_rest(config: Path) -> None:
    swarm = [_peer("10.0.0.12", 4001), _peer("10.0.0.13", 4001)]
    gossip = [_peer("10.0.0.12", 4101)]
    before = load_config(config)
    set_peers(config, swarm, gossip)
    cfg = load_config(config)
    assert (cfg.ipfs.swarm_peers, cfg.gossip.bootstrap) == (swarm, gossip)
    assert cfg.model_copy(update={"ipfs": before.ipfs, "gossip": before.gossip}) == before
    assert "# Other peers' /ip4/<host>/tcp/<port>/p2p/<peer id> addresses." in config.read_text()

    # A list given again replaces the old one (now on several lines); one not given stays.
    set_peers(config, [swarm[1]], None)
    cfg = load_config(config)
    assert (cfg.ipfs.swarm_peers, cfg.gossip.bootstrap) == ([swarm[1]], gossip)
    set_peers(config, None, [])
    assert load_config(config).gossip.bootstrap == []


def test_set_peers_refuses_a_bad_address_and_nothing(config: Path) -> None:
    before = config.read_bytes()
    with pytest.raises(ConfigError, match=r"\[gossip\.bootstrap\].*'/ip4/10\.0\.0\.2/tcp/1' is"):
        set_peers(config, None, ["/ip4/10.0.0.2/tcp/1"])
    with pytest.raises(ConfigError, match=r"nothing to set"):
        set_peers(config, None, None)
    assert config.read_bytes() == before
    result = CliRunner().invoke(
        app, ["set-peers", "--config", str(config), "--bootstrap", _peer("10.0.0.9", 4101)]
    )
    assert result.exit_code == 0, result.output
    assert "0 Kubo swarm peers, 1 gossip bootstrap peers" in result.output
