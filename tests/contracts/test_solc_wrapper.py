"""scripts/solc: a solc command line over the npm wasm build, for py-solc-x, Slither and forge."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from fedchain.contract_build import REPO_ROOT, WRAPPER

SOLCX_VERSION_RE = r"(\d+\.\d+\.\d+)(?:-nightly.\d+.\d+.\d+|)(\+commit.\w+)"


def run(args: list[str], cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WRAPPER), *args], cwd=cwd, input=stdin, capture_output=True, text=True, timeout=180
    )


def test_version_is_what_solc_prints(tmp_path: Path) -> None:
    out = run(["--version"], tmp_path)
    assert out.returncode == 0 and out.stderr == ""
    lines = out.stdout.splitlines()
    assert lines[0] == "solc, the solidity compiler commandline interface"
    assert re.search(SOLCX_VERSION_RE, lines[1]) and lines[1].startswith("Version: 0.8.37+commit.")


def test_standard_json_writes_everything_through_a_pipe(tmp_path: Path) -> None:
    """Large outputs (AST and assembly, far over 64 KiB) arrive whole, with nothing before them."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "Twice.sol").write_text(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
        "library Twice {\n"
        "  function double(uint256 x) internal pure returns (uint256) { return 2 * x; }\n}\n"
    )
    source = (
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.0;\n"
        'import {Twice} from "lib/Twice.sol";\n'
        "contract C {\n  uint256 public v;\n"
        "  function set(uint256 x) external { v = Twice.double(x); }\n}\n"
    )
    request = {
        "language": "Solidity",
        "sources": {
            "C.sol": {"content": source},
            "contracts/Federation.sol": {"urls": ["contracts/Federation.sol"]},
        },
        "settings": {
            "evmVersion": "shanghai",
            "outputSelection": {
                "*": {"*": ["abi", "evm.bytecode", "evm.legacyAssembly"], "": ["ast"]}
            },
        },
    }
    out = run(
        ["--standard-json", "--base-path", str(tmp_path), "--include-path", str(REPO_ROOT)],
        REPO_ROOT / "contracts",
        json.dumps(request),
    )
    assert out.returncode == 0, out.stderr
    assert len(out.stdout) > 64 * 1024
    result = json.loads(out.stdout)
    assert not [e for e in result.get("errors", []) if e["severity"] == "error"]
    assert result["contracts"]["C.sol"]["C"]["evm"]["bytecode"]["object"]
    assert "lib/Twice.sol" in result["sources"]
    assert "contracts/FederationLib.sol" in result["sources"]  # resolved through --include-path


def test_standard_json_reports_compile_errors_in_json(tmp_path: Path) -> None:
    request = {"language": "Solidity", "sources": {"Bad.sol": {"content": "contract {"}}}
    out = run(["--standard-json"], tmp_path, json.dumps(request))
    errors = json.loads(out.stdout)["errors"]
    assert out.returncode == 0 and errors[0]["severity"] == "error"


def test_combined_json_for_slither(tmp_path: Path) -> None:
    fields = "abi,ast,bin,bin-runtime,srcmap,srcmap-runtime,userdoc,devdoc,hashes"
    out = run(
        [
            "contracts/Federation.sol",
            "--combined-json",
            fields,
            "--optimize",
            "--evm-version",
            "shanghai",
            "--allow-paths",
            ".,contracts",
        ],
        REPO_ROOT,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    fed = result["contracts"]["contracts/Federation.sol:Federation"]
    assert set(fields.split(",")) - {"ast"} <= set(fed)
    assert fed["hashes"]["submitUpdate(uint256,uint32,bytes,uint64,uint32)"]
    assert result["sourceList"] == ["contracts/Federation.sol", "contracts/FederationLib.sol"]
    assert result["sources"]["contracts/Federation.sol"]["AST"]["nodeType"] == "SourceUnit"


def test_refuses_what_it_does_not_implement(tmp_path: Path) -> None:
    out = run(["--bogus-flag"], tmp_path)
    assert out.returncode != 0 and "unknown option --bogus-flag" in out.stderr
    out = run(["x.sol", "--combined-json", "abi", "-o", "out"], tmp_path)
    assert out.returncode != 0 and "not supported" in out.stderr
