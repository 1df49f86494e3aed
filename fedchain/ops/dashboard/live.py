"""Where a running dashboard reads from, kept open between polls and reopened after an outage.

The chain handle signs nothing (a throw-away account, like ``fedchain status``); the Kubo
client is optional (auditor mode without ``--ipfs-api``).  A chain or Kubo that goes down shows
as a source that does not answer; the next poll tries again.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

from eth_account import Account
from ipfshttpclient import exceptions as ipfs_errors

from fedchain.errors import FedchainError
from fedchain.ops.dashboard.chain_facts import Web3ChainFacts
from fedchain.ops.dashboard.collect import Reading, SpecFacts, snapshot_of
from fedchain.ops.dashboard.snapshot import Snapshot, SourceState
from fedchain.ops.status import keystore_address
from peer.config import PeerConfig
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient, connect

KUBO_TIMEOUT = 5.0


@dataclass(frozen=True)
class DashboardSources:
    rpc_url: str
    contract: str
    ipfs_api: str | None = None
    records: Path | None = None
    """A peer's ``state_dir`` or a demo/simulate run folder (see :mod:`fedchain.ops.run_data`)."""
    own_address: str | None = None
    own_name: str | None = None
    rpc_timeout: float = 5.0

    @property
    def mode(self) -> str:
        return "auditor" if self.records is None else "peer"

    @classmethod
    def of_peer(cls, cfg: PeerConfig) -> DashboardSources:
        """Everything one institution's config names: its chain, its Kubo, its records."""
        try:
            own: str | None = keystore_address(cfg.keys.eth_keystore)
        except FedchainError:
            own = None
        return cls(
            rpc_url=cfg.chain.rpc_url,
            contract=cfg.chain.contract,
            ipfs_api=cfg.ipfs.api,
            records=cfg.state_dir,
            own_address=own,
            own_name=cfg.institution.name,
            rpc_timeout=cfg.chain.rpc_timeout,
        )


class LiveReader:
    """Takes snapshots; thread-safe (one at a time), so several open pages share the work."""

    def __init__(self, sources: DashboardSources) -> None:
        self.sources = sources
        self._lock = threading.Lock()
        self._ledger: FederationClient | None = None
        self._facts: Web3ChainFacts | None = None
        self._kubo: KuboContentStore | None = None
        self._specs: dict[int, SpecFacts] = {}
        self._last: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        with self._lock:
            chain = self._open_chain()
            content, ipfs = self._open_kubo()
            reading = Reading(
                ledger=self._ledger,
                facts=self._facts,
                chain=chain,
                content=content,
                ipfs=ipfs,
                records=self.sources.records,
                own_address=self.sources.own_address,
                own_name=self.sources.own_name,
            )
            snap = snapshot_of(
                reading,
                mode=self.sources.mode,
                contract=self.sources.contract,
                spec_cache=self._specs,
            )
            if snap.source("chain").ok:
                self._last = snap
                return snap
            self._ledger = None  # reconnect (and re-check the contract) next time
            return self._with_last_reading(snap)

    def _with_last_reading(self, snap: Snapshot) -> Snapshot:
        """While the chain is down, what it said when it last answered (marked by its time)."""
        last = self._last
        if last is None:
            return snap
        return replace(
            snap,
            chain_read_at=last.chain_read_at,
            chain_id=last.chain_id,
            block=last.block,
            members=last.members,
            tasks=last.tasks,
            rounds=last.rounds,
            claims=last.claims,
        )

    def _open_chain(self) -> SourceState:
        url = self.sources.rpc_url
        try:
            if self._ledger is None:
                w3 = connect(url, timeout=self.sources.rpc_timeout)
                self._ledger = FederationClient(w3, self.sources.contract, Account.create())
                self._facts = Web3ChainFacts(w3)
            block = self._ledger.block_number()
        except FedchainError as exc:
            self._ledger = None
            return SourceState("chain", False, f"the chain at {url} does not answer: {exc}")
        return SourceState("chain", True, f"{url}: chain {self._ledger.chain_id}, block {block}")

    def _open_kubo(self) -> tuple[KuboContentStore | None, SourceState | None]:
        api = self.sources.ipfs_api
        if api is None:
            return None, None
        try:
            if self._kubo is None:
                self._kubo = KuboContentStore(api, request_timeout=KUBO_TIMEOUT)
            peers = self._kubo.swarm_peer_count()
        except (FedchainError, ipfs_errors.Error) as exc:
            self._close_kubo()
            return None, SourceState("ipfs", False, f"Kubo at {api} does not answer: {exc}")
        detail = f"Kubo {self._kubo.peer_id} at {api}, {peers} swarm peers"
        return self._kubo, SourceState("ipfs", True, detail)

    def _close_kubo(self) -> None:
        if self._kubo is not None:
            try:
                self._kubo.close()
            finally:
                self._kubo = None

    def close(self) -> None:
        with self._lock:
            self._close_kubo()
