"""Local development chains (Anvil, Ganache, geth) started and stopped by fedchain itself.

Anvil and Ganache run from the repository's ``node_modules/.bin`` (installed by ``npm ci``),
geth from the binary ``scripts/install-geth`` cached; each runs on a free loopback port (or
on a host of its own, see :mod:`fedchain.localnet.placement`), in its own process group with
a log file, and all expose the same small interface so that tests, benchmarks and the demo
can run on any: ``start()``/``stop()`` (or ``with``), ``rpc_url``, ``chain_id``,
``dev_private_keys(n)`` and ``time_advance(seconds)`` (not on geth: it cannot move time).

The dev accounts come from each tool's well-known test mnemonic; their keys are
derived here (BIP-44 path ``m/44'/60'/0'/0/i``) rather than scraped from the
tool's output, and the derivation is checked against ``eth_accounts`` in tests.
geth's developer mode funds one random account only: fedchain starts it from its own
developer genesis, which funds every dev account, so all three chains offer the same accounts.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Self

from eth_account import Account
from eth_account.signers.local import LocalAccount

from fedchain.checkout import SOURCE_ROOT
from fedchain.errors import ServiceUnavailableError, ToolchainError
from fedchain.localnet.placement import LOCAL, LOOPBACK, WELL_KNOWN_PORTS, Placement
from fedchain.localnet.procs import ManagedProcess, free_port, wait_until

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

DEV_FUNDING_WEI = 10_000 * 10**18
"""What geth's genesis gives each dev account (Anvil's balance)."""
GETH_BLOCK_PERIOD = 1
"""Seconds between geth's blocks unless told otherwise; 0 seals a block per transaction."""
GETH_FORKS = ("shanghaiTime", "cancunTime", "pragueTime", "osakaTime")
"""The timed forks geth runs: those Anvil runs too.  Developer mode also turns on forks still
in the making (1.17.10: "bogota", which makes the contract's storage writes ~4x dearer)."""
GETH_PATH_FILE = SOURCE_ROOT / ".fedchain" / "geth-path"
"""Written by ``make setup``: the geth binary's path, or ``unavailable: why``."""

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
        program = self._program()
        log_path = self.log_path
        if log_path is None:
            fd, tmp = tempfile.mkstemp(prefix=f"fedchain-{self.name}-", suffix=".log")
            os.close(fd)
            log_path = self._tmp_log = Path(tmp)
        last_error: ServiceUnavailableError | None = None
        attempts = 1 if self._fixed_port is not None else START_ATTEMPTS
        self._before_start(program)
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
                self._after_start()
            except ServiceUnavailableError as exc:
                last_error = exc
                proc.stop(timeout=5.0)
                self._proc, self._port = None, None
                continue
            except BaseException:
                # Interrupted while waiting: no caller's ``with`` holds this chain yet.
                proc.stop(timeout=5.0)
                self._proc, self._port = None, None
                self._after_stop()
                raise
            return self
        self._after_stop()
        assert last_error is not None
        raise last_error

    def _program(self) -> Path:
        return _find_program(self.name)

    def _before_start(self, program: Path) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Prepare files the chain needs (once, before the first attempt)."""

    def _after_start(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Finish setting the chain up once its RPC answers (e.g. fund dev accounts)."""

    def _after_stop(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Remove what :meth:`_before_start` made for this run only."""

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
        self._after_stop()
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


class GethUnavailable(ToolchainError):
    """The Makefile could not install geth (its path file says why)."""


def find_geth() -> Path:
    """The geth binary: $FEDCHAIN_GETH, else the one the Makefile chose, else one on PATH."""
    env = os.environ.get("FEDCHAIN_GETH")
    source = "FEDCHAIN_GETH"
    if not env and GETH_PATH_FILE.is_file():
        env = GETH_PATH_FILE.read_text(encoding="utf-8").strip()
        source = str(GETH_PATH_FILE)
        if env.startswith("unavailable"):
            raise GethUnavailable(
                f"geth is not installed ({source}: {env}); run scripts/install-geth to see why, "
                f"then delete {GETH_PATH_FILE.name} and re-run `make test`"
            )
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolchainError(
                f"{source} names {env}, which is not an executable file; run scripts/install-geth"
            )
        return path
    found = shutil.which("geth")
    if found is None:
        raise ToolchainError(
            "no geth binary found; run `make demo DEMO_ARGS='--chain geth'` (or "
            "scripts/install-geth) or set FEDCHAIN_GETH"
        )
    return Path(found)


class GethNode(DevChain):
    """go-ethereum in developer mode, sealing a block every ``block_period`` s; chain id 1337.

    Its data directory is ``state_path`` when given (a later node given the same path resumes
    the chain), else a temporary folder next to its log, removed on stop.  The chain starts
    from :meth:`_dev_genesis`, which funds every dev account.  geth cannot move block time,
    so :meth:`time_advance` is refused.
    """

    name = "geth"
    chain_id = 1337
    mnemonic = AnvilNode.mnemonic

    def __init__(self, *, block_period: int = GETH_BLOCK_PERIOD, **kwargs: Any) -> None:
        if block_period < 0:
            raise ValueError(f"block_period is seconds >= 0, got {block_period}")
        super().__init__(**kwargs)
        self.block_period = block_period
        self._datadir: Path | None = None
        self._tmp_datadir: Path | None = None

    def _program(self) -> Path:
        return find_geth()

    def _dev_genesis(self, program: Path) -> dict[str, Any]:
        """geth's own developer genesis (system contracts and all), with only the forks in
        :data:`GETH_FORKS`, the gas limit asked for and every dev account funded."""
        try:
            genesis: dict[str, Any] = json.loads(self._run_tool(program, "--dev", "dumpgenesis"))
        except ValueError as exc:
            raise ToolchainError(f"`{program} --dev dumpgenesis` printed no JSON: {exc}") from exc
        config = genesis["config"]
        for key in [k for k in config if k.endswith("Time") and k not in GETH_FORKS]:
            del config[key]
        genesis["gasLimit"] = hex(self.gas_limit)
        for key in self.dev_private_keys(self.accounts):
            address = Account.from_key(key).address[2:].lower()
            genesis["alloc"][address] = {"balance": hex(DEV_FUNDING_WEI)}
        return genesis

    def _before_start(self, program: Path) -> None:
        if self.state_path is not None:
            self._datadir = self.state_path
        else:
            # Next to the log (inside a demo's or devnet's folder) when there is one.
            near = self.log_path.parent if self.log_path is not None else None
            if near is not None:
                near.mkdir(parents=True, exist_ok=True)
            self._datadir = self._tmp_datadir = Path(
                tempfile.mkdtemp(prefix="fedchain-geth-", dir=near)
            )
        if (self._datadir / "geth" / "chaindata").exists():
            return  # a chain kept on disk: developer mode resumes it
        self._datadir.mkdir(parents=True, exist_ok=True)
        genesis_file = self._datadir / "genesis.json"
        genesis_file.write_text(json.dumps(self._dev_genesis(program)), encoding="utf-8")
        # Developer mode starts from a chain already in its data directory, not its own genesis.
        self._run_tool(program, "init", "--datadir", str(self._datadir), str(genesis_file))

    @staticmethod
    def _run_tool(program: Path, *args: str) -> str:
        try:
            done = subprocess.run(
                [str(program), *args], capture_output=True, text=True, timeout=60, check=True
            )
        except (OSError, subprocess.SubprocessError) as exc:
            detail = (getattr(exc, "stderr", None) or str(exc)).strip().splitlines()[-3:]
            raise ToolchainError(
                f"`geth {' '.join(args[:1])}` failed: {' / '.join(detail)}; is {program} "
                "geth 1.17.10 (scripts/install-geth)?"
            ) from exc
        return done.stdout

    def _argv(self, program: Path, port: int) -> list[str]:
        assert self._datadir is not None
        address = self.placement.address
        return [
            str(program),
            "--dev",
            "--dev.period",
            str(self.block_period),
            "--dev.gaslimit",
            str(self.gas_limit),
            "--miner.gaslimit",
            str(self.gas_limit),
            "--datadir",
            str(self._datadir),
            "--http",
            "--http.addr",
            address,
            "--http.port",
            str(port),
            "--http.api",
            "eth,net,web3",
            "--authrpc.addr",
            address,
            "--authrpc.port",
            str(free_port(LOOPBACK)),
            "--port",
            "0",
            "--nodiscover",
            "--maxpeers",
            "0",
            "--ipcdisable",
            "--verbosity",
            "2",
        ]

    def _after_stop(self) -> None:
        if self._tmp_datadir is not None:
            shutil.rmtree(self._tmp_datadir, ignore_errors=True)
            self._tmp_datadir = None

    def time_advance(self, seconds: int) -> int:
        raise ToolchainError(
            "geth's developer mode cannot move block time forward; use --chain anvil or ganache "
            "for anything that waits out a deadline"
        )


def fund_accounts(
    rpc_url: str,
    sender: LocalAccount,
    addresses: Sequence[str],
    value: int,
    *,
    timeout: float = 30.0,
) -> None:
    """Send ``value`` wei to each address, then wait until every transfer is mined.

    All transfers go out before the first wait, so on a chain with a block period they share
    a block or two instead of waiting one block each.
    """
    if not addresses:
        return
    chain_id = int(rpc_request(rpc_url, "eth_chainId", []), 16)
    nonce = int(rpc_request(rpc_url, "eth_getTransactionCount", [sender.address, "pending"]), 16)
    hashes = []
    for i, to in enumerate(addresses):
        tx: dict[str, Any] = {
            "to": to,
            "value": value,
            "gas": 21_000,
            "nonce": nonce + i,
            "chainId": chain_id,
            "maxFeePerGas": 50 * 10**9,
            "maxPriorityFeePerGas": 10**9,
        }
        raw = "0x" + sender.sign_transaction(tx).raw_transaction.hex()
        hashes.append(rpc_request(rpc_url, "eth_sendRawTransaction", [raw]))

    def all_mined() -> bool:
        while hashes:
            try:
                receipt = rpc_request(rpc_url, "eth_getTransactionReceipt", [hashes[-1]])
            except ServiceUnavailableError as exc:
                if "indexing is in progress" not in str(exc):  # a fresh geth: not yet
                    raise
                receipt = None
            if receipt is None:
                return False
            hashes.pop()
        return True

    what = f"{len(addresses)} funding transfers on {rpc_url}"
    wait_until(all_mined, timeout, what, interval=0.01)


CHAINS: dict[str, type[DevChain]] = {"anvil": AnvilNode, "ganache": GanacheNode, "geth": GethNode}
"""Chain kinds by the name used on command lines (``--chain anvil|ganache|geth``)."""
