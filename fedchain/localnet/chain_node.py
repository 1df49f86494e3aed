"""Local development chains (Anvil, Ganache) started and stopped by fedchain itself.

Both run from the repository's ``node_modules/.bin`` (installed by ``npm ci``) on a
free loopback port (or on a host of their own, see :mod:`fedchain.localnet.placement`),
in their own process group with a log file, and both expose the same small interface so
that tests, benchmarks and the demo can run on either: ``start()``/``stop()`` (or
``with``), ``rpc_url``, ``chain_id``, ``dev_private_keys(n)`` and ``time_advance(seconds)``.

The dev accounts come from each tool's well-known test mnemonic; their keys are
derived here (BIP-44 path ``m/44'/60'/0'/0/i``) rather than scraped from the
tool's output, and the derivation is checked against ``eth_accounts`` in tests.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from eth_account import Account

from fedchain.checkout import SOURCE_ROOT
from fedchain.errors import ServiceUnavailableError, ToolchainError
from fedchain.localnet.placement import LOCAL, LOOPBACK, WELL_KNOWN_PORTS, Placement
from fedchain.localnet.procs import ManagedProcess, free_port

REPO_ROOT = SOURCE_ROOT
NODE_BIN = REPO_ROOT / "node_modules" / ".bin"
DEFAULT_GAS_LIMIT = 30_000_000
"""Block gas limit for both chains (Ganache's default, 6.7M, is too small for big federations)."""
START_TIMEOUT = 30.0
START_ATTEMPTS = 3
"""A free port can be taken between choosing it and the chain binding it; retry on a new one."""
HD_PATH = "m/44'/60'/0'/0/{index}"
STATE_DUMP_INTERVAL = 1
"""Seconds between Anvil's state dumps, so a chain killed without SIGTERM loses at most this."""

Account.enable_unaudited_hdwallet_features()


@functools.lru_cache(maxsize=512)
def _derive_key(mnemonic: str, index: int) -> str:
    acct = Account.from_mnemonic(mnemonic, account_path=HD_PATH.format(index=index))
    return "0x" + bytes(acct.key).hex()


def _find_program(name: str) -> Path:
    local = NODE_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    if found is not None:
        return Path(found)
    raise ToolchainError(
        f"{name} not found in {NODE_BIN} or on PATH; run `make setup` (or `npm ci` in the "
        "repository root) to install the pinned chain tools"
    )


def rpc_request(url: str, method: str, params: list[Any], timeout: float = 5.0) -> Any:
    """One JSON-RPC call over HTTP; return ``result`` or raise ServiceUnavailableError."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read())
    except (OSError, ValueError) as exc:
        raise ServiceUnavailableError(f"chain RPC {url} did not answer {method}: {exc}") from exc
    if "error" in answer:
        raise ServiceUnavailableError(f"chain RPC {url} refused {method}: {answer['error']}")
    return answer.get("result")


class DevChain(ABC):
    """A throw-away local chain in a child process; use as a context manager."""

    name: ClassVar[str]
    chain_id: ClassVar[int]
    mnemonic: ClassVar[str]

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        accounts: int = 10,
        port: int | None = None,
        gas_limit: int = DEFAULT_GAS_LIMIT,
        start_timeout: float = START_TIMEOUT,
        state_path: Path | None = None,
        placement: Placement = LOCAL,
    ) -> None:
        """``state_path`` keeps the chain on disk: a later chain given the same path resumes it.

        ``placement`` is the host the chain runs on; its RPC binds to the placement's address
        (the launcher must be able to reach it: it deploys and waits through it). A host of its
        own uses the well-known port 8545 unless ``port`` says otherwise.
        """
        if accounts < 1:
            raise ValueError(
                f"a dev chain needs at least one funded account, got accounts={accounts}"
            )
        self.accounts = accounts
        self.gas_limit = gas_limit
        self.start_timeout = start_timeout
        self.log_path = log_path
        self.state_path = state_path
        self.placement = placement
        self._fixed_port = port
        if port is None and placement.own_host:
            self._fixed_port = WELL_KNOWN_PORTS.chain_rpc
        self._port: int | None = None
        self._proc: ManagedProcess | None = None
        self._tmp_log: Path | None = None

    # -- what each chain differs in --------------------------------------------

    @abstractmethod
    def _argv(self, program: Path, port: int) -> list[str]:
        """Command line that starts the chain on ``port``."""

    # -- lifecycle ---------------------------------------------------------------

    @property
    def rpc_url(self) -> str:
        if self._port is None:
            raise ServiceUnavailableError(f"{self.name} is not running; call start() first")
        return f"http://{self.placement.address}:{self._port}"

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.is_running()

    @property
    def pid(self) -> int | None:
        """The chain's process id while it runs (it is also its process group id)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def port(self) -> int | None:
        """The port the RPC listens on (at ``placement.address``) while the chain runs."""
        return self._port

    def start(self) -> Self:
        """Start the chain and return once its RPC answers ``eth_chainId``."""
        if self._proc is not None:
            raise RuntimeError(f"{self.name} already started on port {self._port}")
        program = _find_program(self.name)
        log_path = self.log_path
        if log_path is None:
            fd, tmp = tempfile.mkstemp(prefix=f"fedchain-{self.name}-", suffix=".log")
            os.close(fd)
            log_path = self._tmp_log = Path(tmp)
        last_error: ServiceUnavailableError | None = None
        attempts = 1 if self._fixed_port is not None else START_ATTEMPTS
        for _ in range(attempts):
            port = self._fixed_port if self._fixed_port is not None else free_port(LOOPBACK)
            argv = self.placement.command(self._argv(program, port))
            proc = ManagedProcess(argv, log_path=log_path, name=self.name)
            proc.start()
            self._proc, self._port = proc, port
            try:
                proc.wait_until(
                    self._answers, self.start_timeout, f"{self.name} RPC on {self.rpc_url}"
                )
            except ServiceUnavailableError as exc:
                last_error = exc
                proc.stop(timeout=5.0)
                self._proc, self._port = None, None
                continue
            except BaseException:
                # Interrupted while waiting: no caller's ``with`` holds this chain yet.
                proc.stop(timeout=5.0)
                self._proc, self._port = None, None
                raise
            return self
        assert last_error is not None
        raise last_error

    def _answers(self) -> bool:
        try:
            got = rpc_request(self.rpc_url, "eth_chainId", [], timeout=1.0)
        except ServiceUnavailableError:
            return False
        return isinstance(got, str) and int(got, 16) == self.chain_id

    def stop(self) -> None:
        """Stop the chain (SIGTERM, then SIGKILL) and free its port; safe to call twice."""
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.stop(timeout=10.0)
        self._port = None
        if self._tmp_log is not None:
            self._tmp_log.unlink(missing_ok=True)
            self._tmp_log = None

    def __enter__(self) -> Self:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers for tests and demos ---------------------------------------------

    def dev_private_keys(self, n: int) -> list[str]:
        """Private keys (0x-hex) of the first ``n`` funded dev accounts."""
        if not 0 <= n <= self.accounts:
            raise ValueError(
                f"{self.name} was started with {self.accounts} funded accounts; asked for {n} "
                f"(pass accounts={n} or more)"
            )
        return [_derive_key(self.mnemonic, i) for i in range(n)]

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        """A raw JSON-RPC call to this chain (for dev-only methods such as ``evm_mine``)."""
        return rpc_request(self.rpc_url, method, params or [])

    def time_advance(self, seconds: int) -> int:
        """Move block time forward by ``seconds`` and mine a block; return its timestamp."""
        if seconds < 0:
            raise ValueError(f"time only moves forward, got {seconds} s")
        self.rpc("evm_increaseTime", [seconds])
        self.rpc("evm_mine", [])
        block = self.rpc("eth_getBlockByNumber", ["latest", False])
        return int(block["timestamp"], 16)

    def __repr__(self) -> str:
        where = f"{self.placement.address}:{self._port}" if self._port is not None else "stopped"
        return f"{type(self).__name__}({where})"


class AnvilNode(DevChain):
    """Foundry's Anvil: starts in a fraction of a second; chain id 31337."""

    name = "anvil"
    chain_id = 31337
    mnemonic = "test test test test test test test test test test test junk"

    def __init__(self, *, block_time: int = 0, **kwargs: Any) -> None:
        """``block_time`` > 0 mines a block every that many seconds (Anvil's ``--block-time``)
        instead of one per transaction at once, as a real chain would; other arguments as
        :class:`DevChain`."""
        if block_time < 0:
            raise ValueError(f"block_time must be >= 0 seconds (0: mine at once), got {block_time}")
        super().__init__(**kwargs)
        self.block_time = block_time

    def _argv(self, program: Path, port: int) -> list[str]:
        return [
            str(program),
            "--host",
            self.placement.address,
            "--port",
            str(port),
            "--chain-id",
            str(self.chain_id),
            "--accounts",
            str(self.accounts),
            "--mnemonic",
            self.mnemonic,
            "--gas-limit",
            str(self.gas_limit),
            *(["--block-time", str(self.block_time)] if self.block_time else []),
            *self._state_args(),
        ]

    def _state_args(self) -> list[str]:
        if self.state_path is None:
            return []
        # --state loads the file if it exists and dumps to it on exit; the interval bounds the loss
        # when the chain dies without a chance to dump.
        return ["--state", str(self.state_path), "--state-interval", str(STATE_DUMP_INTERVAL)]


class GanacheNode(DevChain):
    """Ganache 7 with its deterministic wallet, pinned to the shanghai hardfork; chain id 1337."""

    name = "ganache"
    chain_id = 1337
    mnemonic = "myth like bonus scare over problem client lizard pioneer submit female collect"

    def _argv(self, program: Path, port: int) -> list[str]:
        return [
            str(program),
            "--server.host",
            self.placement.address,
            "--server.port",
            str(port),
            "--chain.chainId",
            str(self.chain_id),
            "--chain.hardfork",
            "shanghai",
            "--wallet.deterministic",
            "--wallet.totalAccounts",
            str(self.accounts),
            "--miner.blockGasLimit",
            str(self.gas_limit),
            "--logging.quiet",
            *self._state_args(),
        ]

    def _state_args(self) -> list[str]:
        if self.state_path is None:
            return []
        # Ganache writes every block to this database folder as it goes.
        self.state_path.mkdir(parents=True, exist_ok=True)
        return ["--database.dbPath", str(self.state_path)]


CHAINS: dict[str, type[DevChain]] = {"anvil": AnvilNode, "ganache": GanacheNode}
"""Chain kinds by the name used on command lines (``--chain anvil|ganache``)."""
