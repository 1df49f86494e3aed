"""A peer that cannot start says why in one line and exits non-zero."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w

from fedchain.localnet.devnet import LocalFederation, TaskParams
from fedchain.localnet.procs import free_port
from tests.e2e.conftest import SPEC
from tests.factories import read_only

pytestmark = pytest.mark.e2e

FEDCHAIN = str(Path(sys.executable).parent / "fedchain")


@pytest.fixture(scope="module")
def fed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFederation]:
    federation = LocalFederation(tmp_path_factory.mktemp("cli"), ["cleveland", "hungary"])
    federation.start(TaskParams(spec=SPEC, rounds=1, quorum=2))
    yield federation
    federation.close()


def run_peer(config: Path) -> tuple[int, list[str]]:
    proc = subprocess.run(
        [FEDCHAIN, "peer", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    return proc.returncode, lines


def variant(fed: LocalFederation, tmp_path: Path, **changes: object) -> Path:
    h = fed.hospitals[0]
    cfg = tomllib.loads(h.config_path.read_text())
    for section, values in changes.items():
        if isinstance(values, dict):
            cfg[section].update(values)
        else:
            cfg[section] = values
    path = h.home / f"variant-{tmp_path.name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def assert_one_error_line(code: int, lines: list[str], *needles: str) -> None:
    assert code != 0
    errors = [ln for ln in lines if ln.startswith("fedchain: error:")]
    assert len(errors) == 1, lines
    assert not any("Traceback" in ln for ln in lines), lines
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_missing_config(tmp_path: Path) -> None:
    code, lines = run_peer(tmp_path / "nowhere.toml")
    assert_one_error_line(code, lines, "nowhere.toml", "does not exist")


def test_malformed_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[chain\nrpc_url = ")
    code, lines = run_peer(bad)
    assert_one_error_line(code, lines, "bad.toml", "not valid TOML")


def test_invalid_value_names_the_key(fed: LocalFederation, tmp_path: Path) -> None:
    code, lines = run_peer(variant(fed, tmp_path, chain={"contract": "0x1234"}))
    assert_one_error_line(code, lines, "chain.contract")


def test_wrong_keystore_password(fed: LocalFederation, tmp_path: Path) -> None:
    pw = fed.hospitals[0].home / "wrong-password"
    pw.write_text("definitely not it\n")
    code, lines = run_peer(variant(fed, tmp_path, keys={"password_file": str(pw)}))
    assert_one_error_line(code, lines, "wrong password", "eth.json")


def test_unreachable_chain(fed: LocalFederation, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    code, lines = run_peer(variant(fed, tmp_path, chain={"rpc_url": url}))
    assert_one_error_line(code, lines, url)


def test_unreachable_kubo(fed: LocalFederation, tmp_path: Path) -> None:
    api = f"/ip4/127.0.0.1/tcp/{free_port()}"
    code, lines = run_peer(variant(fed, tmp_path, ipfs={"api": api}))
    assert_one_error_line(code, lines, api)


def test_state_dir_that_is_a_file(fed: LocalFederation, tmp_path: Path) -> None:
    blocker = tmp_path / "state-file"
    blocker.write_text("not a folder")
    code, lines = run_peer(variant(fed, tmp_path, state_dir=str(blocker)))
    assert_one_error_line(code, lines, str(blocker), "not a folder")


def test_read_only_state_dir(fed: LocalFederation, tmp_path: Path) -> None:
    with read_only(tmp_path / "ro") as ro:
        code, lines = run_peer(variant(fed, tmp_path, state_dir=str(ro / "state")))
    assert_one_error_line(code, lines, "state_dir is not writable", str(ro / "state"))
