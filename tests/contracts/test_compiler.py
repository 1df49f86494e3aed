"""fedchain.contract_build: cached compiles, surfaced warnings, a clear error without a compiler."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import solcx

from fedchain import contract_build as compiler
from fedchain.errors import ToolchainError

WARNS = """// SPDX-License-Identifier: MIT
pragma solidity ^0.8.0;
contract Warns { function f(uint256 unused) external pure returns (uint256) { return 1; } }
"""


def test_compiles_once_then_serves_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "contracts"
    src.mkdir()
    (src / "Warns.sol").write_text(WARNS)
    build = tmp_path / "build"
    first = compiler.compile_contracts(src, build)["Warns"]
    assert first.bytecode.startswith("0x6080") and len(list(build.glob("*.json"))) == 1
    assert any("Unused function parameter" in w for w in first.warnings)

    def no_compiler(*args: object, **kwargs: object) -> None:
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(solcx, "compile_standard", no_compiler)
    again = compiler.compile_contracts(src, build)["Warns"]
    assert again == first
    (src / "Warns.sol").write_text(WARNS.replace("return 1", "return 2"))
    with pytest.raises(AssertionError, match="cache should have answered"):
        compiler.compile_contracts(src, build)


def test_compile_errors_name_the_problem(tmp_path: Path) -> None:
    (tmp_path / "contracts").mkdir()
    (tmp_path / "contracts" / "Broken.sol").write_text("pragma solidity ^0.8.0; contract Broken {")
    with pytest.raises(ToolchainError, match="did not compile"):
        compiler.compile_contracts(tmp_path / "contracts", tmp_path / "build")


def test_no_compiler_says_how_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compiler, "REPO_ROOT", tmp_path)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(ToolchainError, match=r"make setup.*npm ci"):
        compiler.find_compiler()


def test_prefers_a_native_solc_of_the_pinned_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "solc"
    fake.write_text(
        "#!/bin/sh\necho 'solc, the solidity compiler commandline interface'\n"
        "echo 'Version: 0.8.37+commit.f401782d.Linux.g++'\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert compiler.find_compiler() == (fake, "0.8.37+commit.f401782d.Linux.g++")
    fake.write_text(fake.read_text().replace("0.8.37", "0.8.20"))
    binary, version = compiler.find_compiler()
    assert binary == compiler.WRAPPER and version.startswith("0.8.37+")
