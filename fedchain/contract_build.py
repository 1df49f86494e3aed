"""Build the contract: compile ``contracts/`` with py-solc-x and ship the artifact.

Only the consortium's tools compile (deploy in a checkout, the audit, the tests); the artifact
peers read is written into the package by :func:`write_shipped_artifact`
(``fedchain build-contract``), and a test fails when it is older than the sources.

The compiler is a native ``solc`` on PATH when its version is the pinned one, else
``scripts/solc``: a solc-compatible front end to the npm ``solc`` (wasm) build
that ``npm ci`` installs.  Settings are fixed so every machine produces the same
bytecode: evmVersion shanghai (Ganache 7 runs nothing newer), optimizer on with
200 runs.  Every warning is logged and kept in the artifact.

Starting the wasm compiler takes seconds, so outputs are cached under
``build/contracts/`` keyed by a hash of the sources, the compiler version and the
settings; tools and tests starting together share one compile.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import solcx
from solcx.exceptions import SolcError

from fedchain.checkout import SOURCE_ROOT
from fedchain.errors import ToolchainError
from peer.ledger.artifact import ARTIFACT_FILE, ContractArtifact

log = logging.getLogger("fedchain.contract_build")

REPO_ROOT = SOURCE_ROOT
CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = REPO_ROOT / "build" / "contracts"
WRAPPER = REPO_ROOT / "scripts" / "solc"
SOLC_VERSION = "0.8.37"
"""The pinned compiler (package.json pins the npm build to the same version)."""
EVM_VERSION = "shanghai"
OPTIMIZER_RUNS = 200
MAIN_CONTRACT = "Federation"
CACHE_FORMAT = 1


def _settings() -> dict[str, Any]:
    return {
        "evmVersion": EVM_VERSION,
        "optimizer": {"enabled": True, "runs": OPTIMIZER_RUNS},
        "outputSelection": {
            "*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}
        },
    }


def _full_version(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"{binary} --version failed: {exc}") from exc
    for line in out.splitlines():
        if line.startswith("Version:"):
            return line.split(":", 1)[1].strip()
    raise ToolchainError(f"{binary} --version printed no 'Version:' line: {out!r}")


def find_compiler() -> tuple[Path, str]:
    """The solc to use and its full version: a native solc of the pinned version, else the
    wrapper."""
    native = shutil.which("solc")
    if native is not None and Path(native).resolve() != WRAPPER.resolve():
        try:
            version = _full_version(Path(native))
        except ToolchainError as exc:
            log.warning("ignoring the solc on PATH (%s): %s", native, exc)
        else:
            if version.split("+", 1)[0] == SOLC_VERSION:
                return Path(native), version
            log.info(
                "solc on PATH is %s, not the pinned %s; using the npm build", version, SOLC_VERSION
            )
    if not (REPO_ROOT / "node_modules" / "solc" / "package.json").is_file():
        raise ToolchainError(
            f"no Solidity compiler: neither a native solc {SOLC_VERSION} on PATH nor the npm "
            "'solc' package in node_modules; run `make setup` (or `npm ci` in the repository root)"
        )
    if not os.access(WRAPPER, os.X_OK):
        raise ToolchainError(f"{WRAPPER} is missing or not executable; restore it from git")
    return WRAPPER, _full_version(WRAPPER)


def _sources(contracts_dir: Path) -> dict[str, str]:
    """Source unit name (``contracts/X.sol``) -> text, for the contract sources (not tests)."""
    files = sorted(p for p in contracts_dir.glob("*.sol") if not p.name.endswith(".t.sol"))
    if not files:
        raise ToolchainError(f"no Solidity sources in {contracts_dir}")
    base = contracts_dir.parent
    return {p.relative_to(base).as_posix(): p.read_text(encoding="utf-8") for p in files}


def _hash_sources(sources: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(sources):
        h.update(name.encode() + b"\0" + sources[name].encode() + b"\0")
    return h.hexdigest()


def _cache_key(source_hash: str, compiler: str) -> str:
    material = json.dumps(
        {
            "format": CACHE_FORMAT,
            "sources": source_hash,
            "compiler": compiler,
            "settings": _settings(),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def _run_compiler(binary: Path, sources: dict[str, str], base: Path) -> dict[str, Any]:
    input_json = {
        "language": "Solidity",
        "sources": {name: {"content": text} for name, text in sources.items()},
        "settings": _settings(),
    }
    try:
        output: dict[str, Any] = solcx.compile_standard(
            input_json, base_path=str(base), allow_paths=str(base), solc_binary=binary
        )
    except SolcError as exc:
        raise ToolchainError(
            f"the contracts in {base / 'contracts'} did not compile:\n{exc}"
        ) from exc
    return output


def _artifacts_from_output(
    output: dict[str, Any], compiler: str, source_hash: str
) -> dict[str, ContractArtifact]:
    warnings = tuple(
        str(e.get("formattedMessage") or e.get("message"))
        for e in output.get("errors", [])
        if e.get("severity") != "error"
    )
    artifacts: dict[str, ContractArtifact] = {}
    for source, contracts in output.get("contracts", {}).items():
        for name, data in contracts.items():
            artifacts[name] = ContractArtifact(
                name=name,
                source=source,
                abi=tuple(data["abi"]),
                bytecode="0x" + data["evm"]["bytecode"]["object"],
                deployed_bytecode="0x" + data["evm"]["deployedBytecode"]["object"],
                compiler=compiler,
                source_hash=source_hash,
                warnings=warnings,
            )
    return artifacts


def _write_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_contracts(
    contracts_dir: Path = CONTRACTS_DIR,
    build_dir: Path = BUILD_DIR,
    *,
    force: bool = False,
) -> dict[str, ContractArtifact]:
    """Compile every ``*.sol`` in ``contracts_dir`` (cached); return artifacts by contract name.

    Raises ToolchainError when no compiler is available or the sources do not compile.
    Warnings are logged each time (cached or not) and kept in each artifact.
    """
    sources = _sources(contracts_dir)
    source_hash = _hash_sources(sources)
    binary, compiler = find_compiler()
    cache = build_dir / f"{_cache_key(source_hash, compiler)}.json"
    output: dict[str, Any] | None = None
    if not force and cache.is_file():
        try:
            output = json.loads(cache.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            log.warning("ignoring unreadable compiler cache %s", cache)
    if output is None:
        log.info("compiling %d Solidity sources with %s (%s)", len(sources), compiler, binary)
        output = _run_compiler(binary, sources, contracts_dir.parent)
        _write_atomically(cache, output)
    artifacts = _artifacts_from_output(output, compiler, source_hash)
    for warning in next(iter(artifacts.values())).warnings if artifacts else ():
        log.warning("solc: %s", warning)
    return artifacts


@functools.lru_cache(maxsize=1)
def federation_artifact() -> ContractArtifact:
    """The compiled ``Federation`` contract (compiled once per process, cached on disk)."""
    artifacts = compile_contracts()
    if MAIN_CONTRACT not in artifacts:
        raise ToolchainError(f"{CONTRACTS_DIR} defines no contract named {MAIN_CONTRACT}")
    return artifacts[MAIN_CONTRACT]


def write_shipped_artifact(path: Path = ARTIFACT_FILE) -> ContractArtifact:
    """Compile ``Federation`` and write the artifact the package ships to peers (atomically)."""
    artifact = federation_artifact()
    _write_atomically(path, artifact.to_json())
    path.chmod(0o644)  # package data: readable by whoever installs it
    return artifact
