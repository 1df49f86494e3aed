"""``fedchain init``: keys and a commented config that the peer's own loader accepts, all or
nothing, never over existing files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from typer.testing import CliRunner

from fedchain.cli import app
from fedchain.errors import ConfigError, KeystoreError
from fedchain.ops.encryption_key import load_encryption_key
from fedchain.ops.init import init_institution
from fedchain.ops.peer_toml import PeerSettings
from fedchain.ops.status import keystore_address
from peer.config import load_config
from peer.gossip.peer_id import peer_id_from_seed
from peer.identity import load_identity
from peer.keystore import new_secret, read_keystore, resolve_password

FAST_SCRYPT = 2**12
PASSWORD = "correct horse battery staple"
CONTRACT = "0x" + "ab" * 20


def _settings(**change: object) -> PeerSettings:
    base: dict[str, object] = {
        "institution": "st-marys_2",
        "rpc_url": "http://10.0.0.5:8545",
        "contract": CONTRACT,
        "task_id": 7,
        "ipfs_api": "/ip4/127.0.0.1/tcp/5123",
        "gossip_port": 4200,
    }
    return PeerSettings(**{**base, **change})  # type: ignore[arg-type]


def test_init_writes_keys_and_a_config_the_peer_loads(tmp_path: Path) -> None:
    folder = tmp_path / "site"
    done = init_institution(_settings(), folder, PASSWORD, scrypt_n=FAST_SCRYPT)

    cfg = load_config(done.config)  # the peer's own loader
    assert done.config == folder / "st-marys_2.toml"
    assert cfg.institution.name == "st-marys_2"
    assert (cfg.chain.rpc_url, cfg.chain.contract, cfg.chain.task_id) == (
        "http://10.0.0.5:8545",
        CONTRACT,
        7,
    )
    assert cfg.ipfs.api == "/ip4/127.0.0.1/tcp/5123"
    assert (cfg.gossip.listen_port, cfg.gossip.enabled) == (4200, True)
    assert cfg.data.path == (folder / "data" / "records.csv").resolve()
    assert cfg.state_dir == (folder / "state").resolve()
    assert cfg.keys.password_env == "FEDCHAIN_KEY_PASSWORD"
    assert cfg.baseline.local_only is True  # an institution sees what it would get alone
    text = done.config.read_text()
    assert text.count("\n#") >= 10, "the config explains its settings"

    # The keystores named by the config decrypt to the identifiers init reported.
    ident = load_identity(cfg.keys.eth_keystore, cfg.keys.libp2p_keystore, PASSWORD)
    assert ident.address == done.address and ident.peer_id == done.peer_id
    assert re.fullmatch(r"0x[0-9a-fA-F]{40}", done.address)
    assert done.peer_id.startswith("12D3KooW")
    enc = load_encryption_key(folder / "keys" / "x25519.json", PASSWORD)
    assert enc.public_hex == done.encryption_public_key
    assert bytes(PrivateKey(enc.secret).public_key).hex() == done.encryption_public_key
    assert len(bytes.fromhex(done.encryption_public_key)) == 32

    # Owner-only, and nothing of the staging folder is left behind.
    for path in (*done.keys, done.config):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (folder / "keys").stat().st_mode & 0o777 == 0o700
    assert sorted(p.name for p in folder.iterdir()) == ["keys", "st-marys_2.toml"]


def test_a_built_in_partition_config_loads(tmp_path: Path) -> None:
    done = init_institution(
        _settings(institution="va", partition="va", data_path=None),
        tmp_path,
        PASSWORD,
        scrypt_n=FAST_SCRYPT,
    )
    cfg = load_config(done.config)
    assert (cfg.data.partition, cfg.data.path) == ("va", None)


def test_second_init_refuses_and_leaves_everything_untouched(tmp_path: Path) -> None:
    first = init_institution(_settings(), tmp_path, PASSWORD, scrypt_n=FAST_SCRYPT)
    before = {p: p.read_bytes() for p in (*first.keys, first.config)}
    with pytest.raises(ConfigError, match=r"st-marys_2\.toml already exists.*move it away"):
        init_institution(_settings(), tmp_path, PASSWORD, scrypt_n=FAST_SCRYPT)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keys", "st-marys_2.toml"]


def test_an_existing_key_alone_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "libp2p.json").write_text("an older key")
    with pytest.raises(ConfigError, match=r"keys/libp2p\.json already exists"):
        init_institution(_settings(), tmp_path, PASSWORD, scrypt_n=FAST_SCRYPT)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["keys", "libp2p.json"]
    assert (tmp_path / "keys" / "libp2p.json").read_text() == "an older key"


def test_a_failed_init_leaves_nothing_behind(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="empty password"):
        init_institution(_settings(), tmp_path / "new" / "site", "", scrypt_n=FAST_SCRYPT)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    init_institution(_settings(), tmp_path, PASSWORD, scrypt_n=FAST_SCRYPT)
    assert tmp_path.stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("name", ["bad name", "", "a/b", "x" * 65, "émile"])
def test_bad_institution_name_is_one_clear_error(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigError, match=r"institution name .* is not allowed: use 1-64"):
        init_institution(_settings(institution=name), tmp_path, PASSWORD, scrypt_n=FAST_SCRYPT)
    assert list(tmp_path.iterdir()) == []


def test_cli_prints_what_to_send_and_takes_the_password_like_keys_new(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SITE_PW", PASSWORD)
    args = ["init", "hungary", "--dir", str(tmp_path), "--password-env", "SITE_PW"]
    args += ["--contract", CONTRACT, "--partition", "hungary", "--gossip-host", "10.231.0.12"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    shown = dict(
        re.findall(r"^(address|peer id|encryption key)\s+(\S+)$", result.output, re.MULTILINE)
    )
    cfg = load_config(tmp_path / "hungary.toml")
    assert cfg.keys.password_env == "SITE_PW"
    assert cfg.gossip.listen_host == "10.231.0.12"
    password = resolve_password(cfg.keys.password_env, cfg.keys.password_file)
    assert shown["address"] == keystore_address(cfg.keys.eth_keystore)
    assert shown["peer id"] == peer_id_from_seed(read_keystore(cfg.keys.libp2p_keystore, password))
    enc = load_encryption_key(tmp_path / "keys" / "x25519.json", password)
    assert shown["encryption key"] == enc.public_hex

    monkeypatch.delenv("SITE_PW")
    again = CliRunner().invoke(app, ["init", "bad name", "--dir", str(tmp_path)])
    assert again.exit_code != 0
    assert "institution name 'bad name' is not allowed" in str(again.exception)


def test_peers_given_at_init_are_in_the_config(tmp_path: Path) -> None:
    a, b, kubo = (peer_id_from_seed(new_secret()) for _ in range(3))
    swarm = (f"/ip4/10.0.0.12/tcp/4001/p2p/{kubo}",)
    gossip = (f"/ip4/10.0.0.12/tcp/4101/p2p/{a}", f"/ip4/10.0.0.13/tcp/4101/p2p/{b}")
    done = init_institution(
        _settings(swarm_peers=swarm, bootstrap=gossip), tmp_path, PASSWORD, scrypt_n=FAST_SCRYPT
    )
    cfg = load_config(done.config)
    assert cfg.ipfs.swarm_peers == list(swarm)
    assert cfg.gossip.bootstrap == list(gossip)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bootstrap": ("not-an-addr",)}, r"\[gossip\.bootstrap\].*'not-an-addr' is not"),
        ({"swarm_peers": ("/ip4/10.0.0.2/tcp/4001",)}, r"\[ipfs\.swarm_peers\].*/p2p/<id>"),
        ({"gossip_host": "hospital.example"}, r"\[gossip\.listen_host\].*not an IP address"),
    ],
)
def test_a_bad_option_is_named_and_no_key_is_made(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        init_institution(_settings(**change), tmp_path / "site", PASSWORD, scrypt_n=FAST_SCRYPT)
    assert list(tmp_path.iterdir()) == []
