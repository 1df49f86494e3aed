from __future__ import annotations

from pathlib import Path

import pytest
import tomli_w

from fedchain.errors import ConfigError
from peer.config import load_config

GOOD = {
    "state_dir": "state",
    "institution": {"name": "cleveland"},
    "keys": {"eth_keystore": "keys/eth.json", "libp2p_keystore": "keys/libp2p.json"},
    "chain": {"rpc_url": "http://127.0.0.1:8545", "contract": "0x" + "ab" * 20, "task_id": 1},
    "ipfs": {"api": "/ip4/127.0.0.1/tcp/5001"},
    "data": {"partition": "cleveland"},
}


def write(tmp_path: Path, cfg: dict[str, object]) -> Path:
    p = tmp_path / "peer.toml"
    p.write_text(tomli_w.dumps(cfg))
    return p


def test_good_config_resolves_paths_against_its_folder(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.keys.eth_keystore == (tmp_path / "keys/eth.json").resolve()
    assert cfg.state_dir == (tmp_path / "state").resolve()
    assert cfg.gossip.enabled and cfg.protocol.poll_interval > 0


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"chain": {**GOOD["chain"], "contract": "0x12"}}, "chain.contract"),  # type: ignore[dict-item]
        ({"chain": {**GOOD["chain"], "task_id": 0}}, "chain.task_id"),  # type: ignore[dict-item]
        ({"ipfs": {"api": "localhost:5001"}}, "ipfs.api"),
        ({"institution": {"name": "a b"}}, "institution.name"),
        ({"data": {}}, "data.partition"),
        ({"surprise": {"x": 1}}, "surprise"),
        ({"gossip": {"listen_host": "peer.example"}}, "gossip.listen_host"),
    ],
)
def test_each_problem_names_its_key(tmp_path: Path, change: dict[str, object], where: str) -> None:
    with pytest.raises(ConfigError, match=where.replace(".", r"\.")):
        load_config(write(tmp_path, {**GOOD, **change}))


def test_data_section_is_the_task_layers_local_data(tmp_path: Path) -> None:
    from models.tasks import LocalData

    cfg = load_config(write(tmp_path, GOOD))
    assert isinstance(cfg.data, LocalData) and cfg.data.partition == "cleveland"
    own = {"path": "records/ehr.csv", "test_fraction": 0.25, "split_seed": 4}
    cfg = load_config(write(tmp_path, {**GOOD, "data": own}))
    assert cfg.data.path == (tmp_path / "records" / "ehr.csv").resolve()
    assert cfg.data.partition is None and cfg.data.test_fraction == 0.25
    signals = {"path": "/data/wear.npz", "format": "npz", "modalities": ["acc"]}
    cfg = load_config(write(tmp_path, {**GOOD, "data": signals}))
    assert cfg.data.path == Path("/data/wear.npz") and cfg.data.modalities == ("acc",)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"partition": "va", "path": "x.csv"}, "exactly one of data.partition"),
        ({"path": "x.csv", "format": "xlsx"}, r"data\.format"),
        ({"path": "x.csv", "test_fraction": 0}, r"data\.test_fraction"),
        ({"partition": "va", "format": "csv"}, "only with data.path"),
    ],
)
def test_bad_data_sections(tmp_path: Path, data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, {**GOOD, "data": data}))


def test_missing_section(tmp_path: Path) -> None:
    cfg = {k: v for k, v in GOOD.items() if k != "chain"}
    with pytest.raises(ConfigError, match=r"\[chain\] Field required"):
        load_config(write(tmp_path, cfg))


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[chain\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_gossip_listens_on_every_interface_unless_told(tmp_path: Path) -> None:
    """Other institutions dial this port from their own hosts: loopback would be unreachable."""
    assert load_config(write(tmp_path, GOOD)).gossip.listen_host == "0.0.0.0"
    own = {**GOOD, "gossip": {"listen_host": "10.231.0.11", "listen_port": 4101}}
    assert load_config(write(tmp_path, own)).gossip.listen_host == "10.231.0.11"
