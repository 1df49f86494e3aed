"""A whole local federation on one machine: chain, one Kubo per hospital, keys, contract, configs.

Used by ``fedchain demo`` and by the end-to-end tests, so that both exercise the
same set-up a consortium would do by hand: generate each institution's keys,
deploy the contract with the founders' addresses and peer IDs, publish the task
spec and initial model to IPFS, create the task on-chain, and write one TOML
config per hospital.  Everything started here is stopped by :meth:`close`.

By default every process shares this machine's loopback; given placements (see
:mod:`fedchain.localnet.placement`), each hospital and the chain run on a host of their own,
and every address written into a config is that host's.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import secrets
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import tomli_w
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from consensus.protocol import default_quorum
from consensus.task_spec import TaskSpec
from fedchain.checkout import SOURCE_ROOT
from fedchain.consortium import PublishedTask, TaskTerms, publish_task
from fedchain.errors import ConfigError, ToolchainError
from fedchain.interrupts import raise_if_interrupted
from fedchain.localnet.chain_node import AnvilNode, DevChain, GanacheNode
from fedchain.localnet.kubo_daemon import KuboDaemon, generate_swarm_key
from fedchain.localnet.manifest import CHAIN_STATE, MANIFEST, DevnetManifest, SavedHospital
from fedchain.localnet.placement import LOCAL, WELL_KNOWN_PORTS, Placement
from fedchain.localnet.process_record import ProcessRecord
from fedchain.localnet.procs import ManagedProcess, free_port, on_process_start
from fedchain.ops.encryption_key import ENCRYPTION_FILE, create_encryption_key
from fedchain.private_files import private_dir, write_private_text
from models.tasks import initial_weights
from peer.confidential.envelope import public_key_of
from peer.content.kubo import KuboContentStore
from peer.gossip.peer_id import peer_id_from_seed
from peer.identity import Identity, create_identity, load_identity
from peer.keystore import new_secret, read_keystore
from peer.ledger.client import FederationClient, connect, deploy

log = logging.getLogger("fedchain.devnet")

DEMO_SCRYPT_N = 2**14  # throw-away demo keys: fast to decrypt; real keys use the default
FUNDING_WEI = Web3.to_wei(100, "ether")


def check_quorum(quorum: int, members: int) -> int:
    """``quorum`` if a task of ``members`` members can reach it, else one clear ConfigError."""
    if not 1 <= quorum <= members:
        raise ConfigError(
            f"quorum {quorum} is impossible with {members} members; choose 1..{members} "
            f"(default {default_quorum(members)}, i.e. 2/3 rounded up)"
        )
    return quorum


def find_ipfs() -> Path:
    """The Kubo binary: $FEDCHAIN_IPFS, else the one ``make setup`` chose, else ``ipfs`` on PATH."""
    env = os.environ.get("FEDCHAIN_IPFS")
    chosen = SOURCE_ROOT / ".fedchain" / "ipfs-path"
    if not env and chosen.is_file():
        env = chosen.read_text(encoding="utf-8").strip()
    if env:
        path = Path(env)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ToolchainError(f"FEDCHAIN_IPFS={env} is not an executable file")
        return path
    found = shutil.which("ipfs")
    if found is None:
        raise ToolchainError("no Kubo (ipfs) binary found; run `make setup` or set FEDCHAIN_IPFS")
    return Path(found)


@dataclass
class Hospital:
    name: str
    identity: Identity
    kubo: KuboDaemon
    home: Path
    gossip_port: int
    config_path: Path = field(default_factory=Path)
    placement: Placement = LOCAL

    @property
    def gossip_addr(self) -> str:
        """What the other peers put in their ``gossip.bootstrap`` to dial this one."""
        address = self.placement.address
        return f"/ip4/{address}/tcp/{self.gossip_port}/p2p/{self.identity.peer_id}"


@dataclass(frozen=True)
class TaskParams:
    spec: TaskSpec
    rounds: int
    quorum: int
    round_duration: int = 600
    attest_duration: int = 600
    max_samples: int = 1000

    @property
    def terms(self) -> TaskTerms:
        return TaskTerms(
            rounds=self.rounds,
            quorum=self.quorum,
            round_duration=self.round_duration,
            attest_duration=self.attest_duration,
            max_samples=self.max_samples,
        )


class LocalFederation:
    """Start with :meth:`start`, or use as a context manager; :meth:`close` stops everything."""

    def __init__(
        self,
        root: Path,
        hospitals: Sequence[str],
        *,
        chain: str = "anvil",
        extra_members: int = 0,
        fetch_timeout: float = 30.0,
        persist_chain: bool = False,
        process_record: Path | None = None,
        data: Mapping[str, Mapping[str, Any]] | None = None,
        placements: Mapping[str, Placement] | None = None,
        chain_placement: Placement = LOCAL,
    ) -> None:
        """``persist_chain`` keeps the chain's state in ``root`` so :meth:`resume` can reopen it;
        ``process_record`` is where each started process's PID and ports are written
        (default ``root/processes.json``). ``placements`` puts hospitals on hosts of their own
        (those not named stay on this machine's loopback), ``chain_placement`` the chain; a
        host of its own uses the well-known ports (:data:`WELL_KNOWN_PORTS`)."""
        if chain not in ("anvil", "ganache"):
            raise ToolchainError(f"unknown chain {chain!r}; use anvil or ganache")
        self.root = root
        self.names = list(hospitals)
        self.data = {n: dict((data or {}).get(n, {"partition": n})) for n in self.names}
        """Each hospital's ``[data]`` section (default: the built-in partition of its name)."""
        self.chain_kind = chain
        self.placements = {n: (placements or {}).get(n, LOCAL) for n in self.names}
        self.chain_placement = chain_placement
        self.extra_members = extra_members
        self.fetch_timeout = fetch_timeout
        self.hospitals: list[Hospital] = []
        self.outsiders: list[LocalAccount] = []
        self.password = secrets.token_urlsafe(24)
        self._stack = contextlib.ExitStack()
        self.chain: DevChain | None = None
        self.w3: Web3 | None = None
        self.deployer: FederationClient | None = None
        self.task_id = 0
        self.spec_cid = ""
        self.model_cid = ""
        self.peers: dict[str, ManagedProcess] = {}
        self.isolated: set[str] = set()
        self.chain_state = root / CHAIN_STATE[chain] if persist_chain else None
        self.processes = ProcessRecord(process_record or root / "processes.json", root)

    # -- start-up ---------------------------------------------------------------

    def start(self, task: TaskParams, *, gossip_isolated: Sequence[str] = ()) -> LocalFederation:
        """Bring everything up; hospitals in ``gossip_isolated`` get no gossip links at all."""
        self.isolated = set(gossip_isolated)
        try:
            self._open_root()
            self._start_chain()
            self._start_kubos()
            self._record_kubo_ports()
            self._deploy(task)
            self._write_configs()
            self._write_manifest()
        except BaseException:
            self.close()
            raise
        return self

    @staticmethod
    def exists_in(root: Path) -> bool:
        """True if ``root`` holds a devnet that :meth:`resume` can reopen."""
        return (root / MANIFEST).is_file()

    def resume(self) -> LocalFederation:
        """Reopen the devnet saved in ``root``: the same chain state, contract, task, configs and
        Kubo repos, on the same ports (the configs name them)."""
        manifest = DevnetManifest.read_resumable(self.root, self.chain_kind)
        try:
            self._open_root()
            self.password = (self.root / "password").read_text(encoding="utf-8").strip()
            self._start_chain(port=manifest.chain_port)
            self._resume_kubos(manifest.hospitals)
            self._record_kubo_ports()
            self._reconnect_contract(manifest)
        except BaseException:
            self.close()
            raise
        return self

    def _open_root(self) -> None:
        private_dir(self.root)
        self._stack.enter_context(on_process_start(self.processes.started))

    def _start_chain(self, port: int | None = None) -> None:
        node_cls: type[DevChain] = AnvilNode if self.chain_kind == "anvil" else GanacheNode
        node = node_cls(
            log_path=self.root / "logs" / "chain.log",
            port=port,
            state_path=self.chain_state,
            placement=self.chain_placement,
        )
        chain = self._stack.enter_context(node)
        self.processes.add_ports(chain.pid, *([chain.port] if chain.port else []))
        self.chain = chain
        self.w3 = connect(chain.rpc_url)
        log.info("%s chain on %s", self.chain_kind, chain.rpc_url)

    def _record_kubo_ports(self) -> None:
        for h in self.hospitals:
            self.processes.add_ports(h.kubo.pid, h.kubo.api_port, h.kubo.swarm_port)

    def _start_kubos(self) -> None:
        ipfs = find_ipfs()
        swarm_key = generate_swarm_key()
        write_private_text(self.root / "password", self.password + "\n")
        homes = [self.root / "hospitals" / name for name in self.names]
        kubos = [
            KuboDaemon(
                ipfs,
                home / "ipfs",
                api_port=_port(self.placements[name], WELL_KNOWN_PORTS.kubo_api),
                swarm_port=_port(self.placements[name], WELL_KNOWN_PORTS.kubo_swarm),
                swarm_key=swarm_key,
                placement=self.placements[name],
            )
            for name, home in zip(self.names, homes, strict=True)
        ]
        for kubo in kubos:
            kubo.init()
        # Every Kubo re-dials the others by itself after a restart (Peering.Peers).
        swarm = [kubo.swarm_multiaddr for kubo in kubos]
        for kubo in kubos:
            kubo.set_peering(swarm)
        for name, home, kubo in zip(self.names, homes, kubos, strict=True):
            self._stack.enter_context(kubo)
            ident = create_identity(home / "keys", self.password, scrypt_n=DEMO_SCRYPT_N)
            create_encryption_key(
                home / "keys" / ENCRYPTION_FILE, self.password, scrypt_n=DEMO_SCRYPT_N
            )
            placement = self.placements[name]
            gossip_port = _port(placement, WELL_KNOWN_PORTS.gossip)
            self.hospitals.append(
                Hospital(name, ident, kubo, home, gossip_port, placement=placement)
            )
        # Connect now rather than wait for peering's first (delayed) dial.
        self.connect_kubos()

    def _deploy(self, task: TaskParams) -> None:
        assert self.chain is not None and self.w3 is not None
        dev = Account.from_key(self.chain.dev_private_keys(1)[0])
        self.outsiders = [Account.create() for _ in range(self.extra_members)]
        members = [h.identity.account for h in self.hospitals] + self.outsiders
        peer_ids = [h.identity.peer_id for h in self.hospitals] + [
            peer_id_from_seed(new_secret()) for _ in self.outsiders
        ]
        for acct in members:
            fund_account(self.w3, dev, acct.address)
        # Every member gets an X25519 key and the federation an audit key, so a task may be
        # members-only; the outsiders' keys are throw-away.
        keys = [self.encryption_secret(h.name) for h in self.hospitals]
        keys += [new_secret() for _ in self.outsiders]
        self.deployer = deploy(
            self.w3,
            dev,
            [m.address for m in members],
            peer_ids,
            5001,
            encryption_keys=[public_key_of(k) for k in keys],
            audit_key=public_key_of(self.audit_secret()),
        )
        first = self.hospitals[0]
        creator = FederationClient(self.w3, self.deployer.address, first.identity.account)

        def publish() -> PublishedTask:
            # On the first hospital's host: its Kubo API listens on that host's loopback only.
            with KuboContentStore(first.kubo.api_multiaddr) as store:
                return publish_task(
                    creator, store, task.spec, initial_weights(task.spec), task.terms
                )

        published = first.placement.call(publish)
        self.spec_cid, self.model_cid = published.spec_cid, published.model_cid
        self.task_id = published.task_id
        log.info(
            "contract %s, task %d, spec %s", self.deployer.address, self.task_id, self.spec_cid
        )

    def encryption_secret(self, name: str) -> bytes:
        """Hospital ``name``'s X25519 secret key."""
        path = self.root / "hospitals" / name / "keys" / ENCRYPTION_FILE
        return read_keystore(path, self.password)

    def audit_secret(self) -> bytes:
        """The federation's audit X25519 secret (made once, kept in the devnet's folder)."""
        path = self.root / "audit" / ENCRYPTION_FILE
        if not path.exists():
            private_dir(path.parent)
            create_encryption_key(path, self.password, scrypt_n=DEMO_SCRYPT_N)
        return read_keystore(path, self.password)

    def _write_configs(self) -> None:
        assert self.chain is not None and self.deployer is not None
        for i, h in enumerate(self.hospitals):
            others = [o for o in self.hospitals if o is not h]
            cfg = {
                "state_dir": "state",
                "institution": {"name": h.name},
                "keys": {
                    "eth_keystore": "keys/eth.json",
                    "libp2p_keystore": "keys/libp2p.json",
                    "encryption_keystore": f"keys/{ENCRYPTION_FILE}",
                    "password_file": "../../password",
                },
                "chain": {
                    "rpc_url": self.chain.rpc_url,
                    "contract": self.deployer.address,
                    "task_id": self.task_id,
                },
                "ipfs": {
                    "api": h.kubo.api_multiaddr,
                    "swarm_peers": [o.kubo.swarm_multiaddr for o in others],
                    "fetch_timeout": self.fetch_timeout,
                },
                "gossip": {
                    "listen_host": h.placement.address,
                    "listen_port": h.gossip_port,
                    "bootstrap": []
                    if h.name in self.isolated
                    else [o.gossip_addr for o in self.hospitals[:i] if o.name not in self.isolated],
                },
                "data": self.data[h.name],
            }
            h.config_path = h.home / "config.toml"
            private_dir(h.home / "keys")
            private_dir(h.home)
            write_private_text(h.config_path, tomli_w.dumps(cfg))
        for folder in ("hospitals", "logs"):
            private_dir(self.root / folder)

    # -- a devnet kept on disk ---------------------------------------------------

    def _write_manifest(self) -> None:
        assert self.chain is not None and self.chain.port is not None
        assert self.deployer is not None
        DevnetManifest(
            chain=self.chain_kind,
            chain_port=self.chain.port,
            persistent=self.chain_state is not None,
            contract=self.deployer.address,
            task_id=self.task_id,
            spec_cid=self.spec_cid,
            model_cid=self.model_cid,
            hospitals=[
                SavedHospital(
                    name=h.name,
                    api_port=h.kubo.api_port,
                    swarm_port=h.kubo.swarm_port,
                    gossip_port=h.gossip_port,
                )
                for h in self.hospitals
            ],
        ).write(self.root)

    def _resume_kubos(self, saved: list[SavedHospital]) -> None:
        ipfs = find_ipfs()
        for entry in saved:
            home = self.root / "hospitals" / entry.name
            repo = home / "ipfs"
            kubo = KuboDaemon(
                ipfs,
                repo,
                api_port=entry.api_port,
                swarm_port=entry.swarm_port,
                swarm_key=(repo / "swarm.key").read_bytes(),
                placement=self.placements[entry.name],
            )
            kubo.init()
            self._stack.enter_context(kubo)
            ident = load_identity(
                home / "keys" / "eth.json", home / "keys" / "libp2p.json", self.password
            )
            hospital = Hospital(
                entry.name,
                ident,
                kubo,
                home,
                entry.gossip_port,
                placement=self.placements[entry.name],
            )
            hospital.config_path = home / "config.toml"
            self.hospitals.append(hospital)
        self.connect_kubos()

    def connect_kubos(self) -> None:
        """Connect every hospital's Kubo to every other one (the private swarm has no bootstrap)."""
        for a in self.hospitals:
            others = [b.kubo.swarm_multiaddr for b in self.hospitals if b is not a]
            a.placement.call(functools.partial(_connect_swarm, a.kubo, others))

    def _reconnect_contract(self, manifest: DevnetManifest) -> None:
        assert self.chain is not None and self.w3 is not None
        address = Web3.to_checksum_address(manifest.contract)
        if not self.w3.eth.get_code(address):
            raise ConfigError(
                f"the chain restored from {self.chain_state} has no contract at {address}; "
                "the saved state is older than the devnet: start a new one in an empty folder"
            )
        dev = Account.from_key(self.chain.dev_private_keys(1)[0])
        self.deployer = FederationClient(self.w3, address, dev)
        self.task_id = manifest.task_id
        self.spec_cid = manifest.spec_cid
        self.model_cid = manifest.model_cid
        log.info("resumed contract %s, task %d", address, self.task_id)

    def stopped_services(self) -> list[tuple[str, Path]]:
        """Services this federation started that are no longer running, with their log files."""
        stopped: list[tuple[str, Path]] = []
        if self.chain is not None and not self.chain.is_running():
            assert self.chain.log_path is not None
            stopped.append((f"the chain ({self.chain_kind})", self.chain.log_path))
        stopped += [
            (f"the Kubo daemon of {h.name}", h.kubo.log_path)
            for h in self.hospitals
            if not h.kubo.is_running()
        ]
        return stopped

    # -- peers ------------------------------------------------------------------

    def spawn_peer(self, name: str, *, extra_env: dict[str, str] | None = None) -> ManagedProcess:
        h = self.hospital(name)
        # Several peers share this machine's cores: one math thread each avoids oversubscription.
        env = {"OMP_NUM_THREADS": "1", **os.environ, **(extra_env or {})}
        fedchain_cli = Path(sys.executable).parent / "fedchain"
        proc = ManagedProcess(
            h.placement.command([str(fedchain_cli), "peer", "run", "--config", str(h.config_path)]),
            log_path=self.root / "logs" / f"peer-{name}.log",
            name=f"peer-{name}",
            env=env,
        )
        proc.start()  # recorded in processes.json by the listener start()/resume() set up
        self.processes.add_ports(proc.pid, h.gossip_port)
        self.peers[name] = proc
        return proc

    def wait_peers_exit(self, timeout: float) -> dict[str, int | None]:
        """Wait for peers to leave by themselves (task complete, credit claimed); their codes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(p.is_running() for p in self.peers.values()):
            raise_if_interrupted()
            time.sleep(0.1)
        return {name: proc.returncode for name, proc in self.peers.items()}

    def hospital(self, name: str) -> Hospital:
        for h in self.hospitals:
            if h.name == name:
                return h
        raise KeyError(name)

    def member_key(self, name: str) -> bytes:
        h = self.hospital(name)
        return read_keystore(h.home / "keys" / "eth.json", self.password)

    # -- shutdown ----------------------------------------------------------------

    def close(self) -> None:
        for proc in self.peers.values():
            proc.stop(timeout=10)
        self.peers.clear()
        self._stack.close()

    def __enter__(self) -> LocalFederation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _port(placement: Placement, well_known: int) -> int:
    """The well-known port on a host of its own, else a free one on this machine's loopback."""
    return well_known if placement.own_host else free_port()


def _connect_swarm(kubo: KuboDaemon, others: Sequence[str]) -> None:
    """Connect ``kubo`` to the other swarm addresses (run on ``kubo``'s own host)."""
    with KuboContentStore(kubo.api_multiaddr) as store:
        for addr in others:
            store.connect(addr)


def fund_account(w3: Web3, sender: LocalAccount, to: str) -> None:
    tx: dict[str, Any] = {
        "to": to,
        "value": FUNDING_WEI,
        "gas": 21_000,
        "nonce": w3.eth.get_transaction_count(sender.address, "pending"),
        "chainId": w3.eth.chain_id,
        "maxFeePerGas": w3.to_wei(50, "gwei"),
        "maxPriorityFeePerGas": w3.to_wei(1, "gwei"),
    }
    signed = sender.sign_transaction(tx)
    tx_hash = w3.eth.send_raw_transaction(signed.raw_transaction)
    w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.005)
