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
from typing import TYPE_CHECKING

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError, FedchainError, LedgerError, ProtocolError
from peer.agreed_spec import read_spec
from peer.announcements import Domain
from peer.config import PeerConfig
from peer.content.kubo import KuboContentStore
from peer.gossip.validation import AnnouncementValidator, ChainMembership
from peer.identity import Identity, load_identity
from peer.keystore import resolve_password
from peer.ledger.client import FederationClient, connect
from peer.ledger.types import Submission
from peer.records import prepare_state_dir
from peer.secure_aggregation import capped_scores

if TYPE_CHECKING:
    from fedchain.attacks import Attack
    from models.tasks import Learner
    from peer.node import PeerNode

log = logging.getLogger("fedchain.peer.startup")


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


def _announcement_validator(
    cfg: PeerConfig, ident: Identity, ledger: FederationClient
) -> AnnouncementValidator:
    """Checks run by gossip before delivery or relay, on a chain connection of their own."""
    reader = FederationClient(
        connect(cfg.chain.rpc_url, timeout=cfg.chain.rpc_timeout),
        cfg.chain.contract,
        ident.account,
        artifact=ledger.artifact,
    )
    domain = Domain(chain_id=ledger.chain_id, contract=ledger.address)
    view = ChainMembership(reader)
    return AnnouncementValidator(domain, cfg.chain.task_id, view, closed_sets=view)


def open_ledger(cfg: PeerConfig) -> tuple[Identity, FederationClient]:
    """Decrypt the keys, reach the chain and check this institution's membership."""
    password = resolve_password(cfg.keys.password_env, cfg.keys.password_file)
    ident = load_identity(cfg.keys.eth_keystore, cfg.keys.libp2p_keystore, password)
    w3 = connect(cfg.chain.rpc_url, timeout=cfg.chain.rpc_timeout)
    ledger = FederationClient(
        w3, cfg.chain.contract, ident.account, receipt_timeout=cfg.chain.receipt_timeout
    )
    _check_membership(ledger, ident, cfg.chain.contract)
    return ident, ledger


def encryption_secret(cfg: PeerConfig, spec: TaskSpec) -> bytes | None:
    """This member's X25519 secret key (keys.encryption_keystore) when the task is members-only
    or uses secure aggregation (its pairwise masks come from key agreement)."""
    if spec.confidentiality == "none" and spec.secure_aggregation is None:
        return None
    if cfg.keys.encryption_keystore is None:
        why = (
            'members-only (confidentiality = "members")'
            if spec.confidentiality != "none"
            else "securely aggregated (secure_aggregation)"
        )
        raise ConfigError(
            f"task {cfg.chain.task_id} is {why}: set "
            "keys.encryption_keystore to the X25519 keystore `fedchain init` made"
        )
    from fedchain.ops.encryption_key import load_encryption_key

    password = resolve_password(cfg.keys.password_env, cfg.keys.password_file)
    return load_encryption_key(cfg.keys.encryption_keystore, password).secret


def _testing_attack(cfg: PeerConfig) -> Attack | None:
    """The attack of the test-only ``[testing]`` table (already allowed by the config), loudly."""
    if cfg.testing is None:
        return None
    from fedchain.attacks import get_attack

    attack = get_attack(cfg.testing.attack, **cfg.testing.attack_params)
    log.warning(
        "TESTING ONLY: this peer (%s) is a Byzantine member playing the attack %s; its updates "
        "are deliberately wrong. Never run this against a real federation",
        cfg.institution.name,
        attack.describe(),
    )
    if attack.needs_honest_updates:
        log.warning(
            "attack %r would use the other members' updates of the round; a peer process does "
            "not collect them before training, so it plays the attack without them",
            attack.name,
        )
    return attack


def run_peer(cfg: PeerConfig) -> int:
    """Check keys, chain, membership and Kubo first (cheap, clear errors), then start the node."""
    attack = _testing_attack(cfg)
    prepare_state_dir(cfg.state_dir)
    ident, ledger = open_ledger(cfg)
    with terminate_as_interrupt(), contextlib.ExitStack() as stack:
        content = stack.enter_context(KuboContentStore(cfg.ipfs.api))
        for addr in cfg.ipfs.swarm_peers:
            try:
                content.connect(addr)
            except FedchainError as exc:
                log.warning("could not connect Kubo to %s (will rely on others): %s", addr, exc)
        spec = read_spec(ledger, content, cfg.chain.task_id, cfg.ipfs.fetch_timeout)
        # Heavy imports (torch, libp2p) only once every cheap check has passed.
        from models.tasks import Learner, get_task, use_deterministic_torch
        from peer.gossip.libp2p_gossip import Libp2pGossip
        from peer.node import LocalLearner, PeerNode

        use_deterministic_torch()
        own_learner = Learner.from_local(get_task(spec.task), spec, cfg.data, cfg.institution.name)
        learner: LocalLearner = own_learner
        if attack is not None:
            from fedchain.attacks import ByzantineLearner

            learner = ByzantineLearner(
                learner, attack, member=cfg.institution.name, seed=spec.training.seed
            )
        gossip = None
        if cfg.gossip.enabled:
            gossip = Libp2pGossip(
                ident.libp2p_seed,
                topic=gossip_topic(ledger.chain_id, cfg.chain.contract, cfg.chain.task_id),
                listen_host=cfg.gossip.listen_host,
                listen_port=cfg.gossip.listen_port,
                bootstrap=cfg.gossip.bootstrap,
                validator=_announcement_validator(cfg, ident, ledger),
            )
            stack.callback(gossip.close)
        node = PeerNode(
            cfg=cfg,
            identity=ident,
            ledger=ledger,
            content=content,
            gossip=gossip,
            spec=spec,
            learner=learner,
            encryption_secret=encryption_secret(cfg, spec),
        )
        stack.callback(node.close)
        try:
            if gossip is not None:
                gossip.start()
                _log_gossip_address(cfg, gossip.listen_addrs, ident.peer_id)
            code = node.run()
            if code == 0 and cfg.baseline.local_only:
                _record_baseline(cfg, own_learner, node, ledger)
            return code
        except KeyboardInterrupt:
            log.info("stopping on request")
            return 130


def _record_baseline(
    cfg: PeerConfig, learner: Learner, node: PeerNode, ledger: FederationClient
) -> None:
    """The local-only baseline after the task (``[baseline] local_only``); a failure here is
    logged, not fatal: the task itself has completed."""
    from peer.baseline import record_local_only

    try:
        rounds = ledger.task(cfg.chain.task_id).num_rounds
        record_local_only(learner, node.initial_model(), rounds, cfg.state_dir)
    except (FedchainError, ValueError, RuntimeError) as exc:
        log.error("the local-only baseline was not recorded: %s", exc)


def _log_gossip_address(cfg: PeerConfig, listen_addrs: list[str], peer_id: str) -> None:
    """Say what the other institutions dial: a wildcard listen address is not dialable."""
    if cfg.gossip.listen_host in ("0.0.0.0", "::"):
        log.info(
            "gossip listening on all interfaces, port %d; the other institutions put "
            "/ip4/<this host's address>/tcp/%d/p2p/%s in their gossip.bootstrap",
            cfg.gossip.listen_port,
            cfg.gossip.listen_port,
            peer_id,
        )
    else:
        log.info("gossip listening on %s", ", ".join(listen_addrs))


def claim_all(cfg: PeerConfig) -> list[tuple[int, int]]:
    """Claim every finalized round of the task this member earned and has not claimed.

    Rebuilds scores from the chain (and, where the chain alone does not reproduce the agreed
    root, from the updates on IPFS), so it works after a crash, from any machine holding the
    member's keys, and at any time during or after the task.  Returns (round, score) claimed.
    """
    ident, ledger = open_ledger(cfg)
    with KuboContentStore(cfg.ipfs.api) as content:
        spec = read_spec(ledger, content, cfg.chain.task_id, cfg.ipfs.fetch_timeout)
        import torch

        from consensus.serialization import bundle_from_bytes, model_bytes_limit
        from consensus.strategies.registry import build_rule
        from models.tasks import reference_weights
        from peer.claims import ClaimBook
        from peer.confidential.seal import content_seal, sealed_fetcher
        from peer.content.cid import Cid
        from peer.round_updates import collect_updates

        reference = reference_weights(spec)
        state_reference = build_rule(spec.aggregation).state_names(reference)
        encoding = spec.encoding.build()
        cap = ledger.task(cfg.chain.task_id).max_samples
        fetcher = sealed_fetcher(
            content,
            content_seal(spec, ledger, cfg.chain.task_id, encryption_secret(cfg, spec)),
            timeout=cfg.ipfs.fetch_timeout,
            max_bytes=max(model_bytes_limit(reference), encoding.max_bytes(reference)),
        )

        def global_model(model: bytes) -> dict[str, torch.Tensor]:
            cid = ledger.model_cid(cfg.chain.task_id, model)
            if Cid.parse(cid).digest != model:
                raise ProtocolError(f"global model CID {cid} does not match the on-chain digest")
            data = fetcher.fetch_verified(
                cid, max_bytes=model_bytes_limit({**reference, **state_reference})
            )
            return bundle_from_bytes(data, reference=reference, state_reference=state_reference)[0]

        def accepted(round_no: int, subs: list[Submission], model: bytes) -> list[tuple[str, int]]:
            if spec.secure_aggregation is not None:  # credit by sample count: nothing to fetch
                return capped_scores(subs, cap)
            got = collect_updates(
                subs,
                model,
                fetcher,
                reference,
                max_samples=cap,
                max_abs_weight=spec.max_abs_weight,
                encoding=encoding,
                global_model=lambda: global_model(model),
            )
            return [(u.member, u.num_samples) for u in got.accepted]

        book = ClaimBook(ledger, cfg.chain.task_id, ident.address)
        try:
            book.rebuild(accepted)
        finally:
            fetcher.close()
        return sorted(book.claimed.items())
