from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from fedchain.errors import KeystoreError
from peer.identity import create_identity, load_identity
from peer.keystore import new_secret, read_keystore, resolve_password, write_keystore


def test_round_trip_mode_and_no_plaintext(tmp_path: Path) -> None:
    secret = new_secret()
    path = tmp_path / "k.json"
    write_keystore(path, secret, "pw", scrypt_n=2**12)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secret.hex() not in path.read_text()
    assert read_keystore(path, "pw") == secret


def test_wrong_password_missing_corrupt_and_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    write_keystore(path, new_secret(), "pw", scrypt_n=2**12)
    with pytest.raises(KeystoreError, match="wrong password"):
        read_keystore(path, "nope")
    with pytest.raises(KeystoreError, match="does not exist"):
        read_keystore(tmp_path / "none.json", "pw")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KeystoreError, match="not a valid keystore"):
        read_keystore(tmp_path / "bad.json", "pw")
    (tmp_path / "partial.json").write_text(json.dumps({"version": 3}))
    with pytest.raises(KeystoreError):
        read_keystore(tmp_path / "partial.json", "pw")
    with pytest.raises(KeystoreError, match="already exists"):
        write_keystore(path, new_secret(), "pw", scrypt_n=2**12)
    with pytest.raises(KeystoreError, match="empty password"):
        write_keystore(tmp_path / "e.json", new_secret(), "")


def test_identity_round_trip(tmp_path: Path) -> None:
    ident = create_identity(tmp_path, "pw", scrypt_n=2**12)
    again = load_identity(tmp_path / "eth.json", tmp_path / "libp2p.json", "pw")
    assert again.address == ident.address and again.peer_id == ident.peer_id
    assert ident.peer_id.startswith("12D3KooW")


def test_password_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FC_TEST_PW", raising=False)
    with pytest.raises(KeystoreError, match="FC_TEST_PW"):
        resolve_password("FC_TEST_PW", None)
    monkeypatch.setenv("FC_TEST_PW", "secret")
    assert resolve_password("FC_TEST_PW", None) == "secret"
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    assert resolve_password("FC_TEST_PW", f) == "from-file"
