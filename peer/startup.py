"""Bring a peer up from its config, checking each outside dependency in turn.

Each check fails with one line naming the input at fault (config key, keystore,
RPC address, Kubo address, membership) and what the operator should do, and
nothing is started until everything it depends on has answered.
"""

from __future__ import annotations

import contextlib
import logging
import signal
from collections.abc import Iterator
from types import FrameType

from consensus.task_spec import TaskSpec
from fedchain.errors import ContentError, FedchainError, LedgerError
from peer.config import PeerConfig
from peer.content.abc import ContentStore
from peer.content.kubo import KuboContentStore
from peer.content.unixfs import file_cid
from peer.identity import Identity, load_identity
from peer.keystore import resolve_password
from peer.ledger.client import FederationClient, connect

log = logging.getLogger("fedchain.peer")


def gossip_topic(chain_id: int, contract: str, task_id: int) -> str:
    return f"/fedchain/1/{chain_id}/{contract.lower()}/task/{task_id}"


def _check_membership(ledger: FederationClient, ident: Identity, contract: str) -> None:
    if not ledger.is_member(ident.address):
        raise LedgerError(
            f"{ident.address} is not a member of the federation at {contract}; "
            "ask the members to admit this institution, or check keys.eth_keystore"
        )
    registered = ledger.peer_id_of(ident.address)
    if registered != ident.peer_id:
        raise LedgerError(
            f"the libp2p key {ident.peer_id} is not the one registered for {ident.address} "
            f"({registered}); check keys.libp2p_keystore"
        )


def _read_spec(
    ledger: FederationClient, content: ContentStore, task_id: int, timeout: float
) -> TaskSpec:
    spec_cid = ledger.spec_cid(task_id)
    data = content.get(spec_cid, timeout=timeout)
    if file_cid(data) != spec_cid:
        raise ContentError(f"task spec content does not hash to {spec_cid}")
    spec = TaskSpec.from_bytes(data)
    log.info(
        "task %d: %s (model %s, rule %s)", task_id, spec.name, spec.model.arch, spec.aggregation
    )
    return spec


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C so every resource is released."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_peer(cfg: PeerConfig) -> int:
    """Check keys, chain, membership and Kubo first (cheap, clear errors), then start the node."""
    password = resolve_password(cfg.keys.password_env, cfg.keys.password_file)
    ident = load_identity(cfg.keys.eth_keystore, cfg.keys.libp2p_keystore, password)
    w3 = connect(cfg.chain.rpc_url, timeout=cfg.chain.rpc_timeout)
    ledger = FederationClient(w3, cfg.chain.contract, ident.account)
    _check_membership(ledger, ident, cfg.chain.contract)
    with terminate_as_interrupt(), contextlib.ExitStack() as stack:
        content = stack.enter_context(KuboContentStore(cfg.ipfs.api))
        for addr in cfg.ipfs.swarm_peers:
            try:
                content.connect(addr)
            except FedchainError as exc:
                log.warning("could not connect Kubo to %s (will rely on others): %s", addr, exc)
        spec = _read_spec(ledger, content, cfg.chain.task_id, cfg.ipfs.fetch_timeout)
        # Heavy imports (torch, libp2p) only once every cheap check has passed.
        from peer.gossip.libp2p_gossip import Libp2pGossip
        from peer.node import PeerNode
        from peer.training import LocalTrainer, load_partition

        data = load_partition(spec.dataset, cfg.data.partition)
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        gossip = None
        if cfg.gossip.enabled:
            gossip = Libp2pGossip(
                ident.libp2p_seed,
                topic=gossip_topic(ledger.chain_id, cfg.chain.contract, cfg.chain.task_id),
                listen_host=cfg.gossip.listen_host,
                listen_port=cfg.gossip.listen_port,
                bootstrap=cfg.gossip.bootstrap,
            )
            stack.callback(gossip.close)
        node = PeerNode(
            cfg=cfg,
            identity=ident,
            ledger=ledger,
            content=content,
            gossip=gossip,
            spec=spec,
            trainer=LocalTrainer(spec, data),
        )
        stack.callback(node.close)
        try:
            if gossip is not None:
                gossip.start()
                log.info("gossip listening on %s", ", ".join(gossip.listen_addrs))
            return node.run()
        except KeyboardInterrupt:
            log.info("stopping on request")
            return 130
