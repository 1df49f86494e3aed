"""devnet.json: written owner-only, and a devnet is resumed only when that can work."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from fedchain.errors import ConfigError
from fedchain.localnet.manifest import CHAIN_STATE, MANIFEST, DevnetManifest, SavedHospital


def manifest(*, persistent: bool = True) -> DevnetManifest:
    return DevnetManifest(
        chain="anvil",
        chain_port=8545,
        persistent=persistent,
        contract="0x" + "ab" * 20,
        task_id=1,
        spec_cid="bafy-spec",
        model_cid="bafy-model",
        hospitals=[SavedHospital(name="va", api_port=5001, swarm_port=4001, gossip_port=9000)],
    )


def test_a_saved_devnet_with_its_chain_state_reads_back_unchanged(tmp_path: Path) -> None:
    manifest().write(tmp_path)
    (tmp_path / CHAIN_STATE["anvil"]).write_text("{}")
    assert DevnetManifest.read_resumable(tmp_path, "anvil") == manifest()
    assert stat.S_IMODE((tmp_path / MANIFEST).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("saved", "chain", "state", "message"),
    [
        (manifest(persistent=False), "anvil", True, "started without --state"),
        (manifest(), "ganache", True, "resume it with --chain anvil"),
        (manifest(), "anvil", False, "no saved chain state"),
    ],
)
def test_a_devnet_that_cannot_come_back_is_refused_with_the_reason(
    tmp_path: Path, saved: DevnetManifest, chain: str, state: bool, message: str
) -> None:
    saved.write(tmp_path)
    if state:
        (tmp_path / CHAIN_STATE[chain]).write_text("{}")
    with pytest.raises(ConfigError, match=message):
        DevnetManifest.read_resumable(tmp_path, chain)


def test_a_damaged_manifest_names_the_file(tmp_path: Path) -> None:
    (tmp_path / MANIFEST).write_text('{"chain": "anvil"}')
    expected = rf"cannot read .*{MANIFEST} \(chain_port: Field required\)"
    with pytest.raises(ConfigError, match=expected):
        DevnetManifest.read_resumable(tmp_path, "anvil")
