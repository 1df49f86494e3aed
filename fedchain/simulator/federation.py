"""A whole federation in one process: an in-memory chain, content network and gossip, and one
real :class:`~peer.node.PeerNode` per virtual institution, all on one virtual clock.

The driver steps every running node once, in a fixed order (a pass); only when a whole pass
found every node waiting does it move the clock, straight to the next deadline the chain is
waiting for.  Nothing runs on another thread (evaluation, record writing and fetches are
inline), so a run is a function of its inputs: the same seed gives the same chain, the same
CIDs and the same records.

Crashes, restarts, admissions and removals are driven from outside (tests use them):
:meth:`VirtualFederation.crash` drops a node's object as a killed process would lose it, and
:meth:`VirtualFederation.start` builds a fresh node on the same state folder and backends.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eth_account import Account

from consensus.protocol import RoundStatus, default_quorum
from consensus.task_spec import TaskSpec
from fedchain.consortium import TaskTerms, publish_task
from fedchain.errors import FedchainError
from peer.announcements import Domain
from peer.clock import VirtualClock
from peer.confidential.envelope import public_key_of
from peer.config import PeerConfig
from peer.content.memory import MemoryContentNetwork, MemoryContentStore
from peer.executor import InlineExecutor
from peer.gossip.memory import MemoryGossip, MemoryGossipNetwork
from peer.gossip.validation import AnnouncementValidator, ChainMembership
from peer.identity import Identity
from peer.ledger.memory import MemoryChain, MemoryFederation
from peer.ledger.types import ProposalKind
from peer.node import LocalLearner, PeerNode, StepOutcome
from peer.records import RoundObserver
from peer.round_state import StateDict

log = logging.getLogger("fedchain.simulator")

START_TIME = 1_767_225_600.0
"""Virtual unix time at which every simulation starts (2026-01-01 UTC)."""

_inline = InlineExecutor()


def derived_identity(seed: int, name: str) -> Identity:
    """A reproducible identity for virtual institution ``name`` (never use outside simulations)."""
    eth = hashlib.sha256(f"fedchain-sim/eth/{seed}/{name}".encode()).digest()
    p2p = hashlib.sha256(f"fedchain-sim/libp2p/{seed}/{name}".encode()).digest()
    return Identity(Account.from_key(eth), p2p)


class SharedVerdicts:
    """One gossip verdict per (sender, message, block), shared by every virtual peer.

    The real gossip layer checks each announcement at every receiver; honest receivers reading
    the same chain reach the same verdict, so the simulator checks each message once per block
    (signature recovery dominates a large simulation otherwise).  Errors are re-raised as-is.
    """

    def __init__(self, validator: Callable[[str, bytes], object], chain: MemoryChain) -> None:
        self._validator = validator
        self._chain = chain
        self._block = -1
        self._verdicts: dict[tuple[str, bytes], object] = {}

    def __call__(self, sender_peer_id: str, data: bytes) -> object:
        block = self._chain.block_number()
        if block != self._block:
            self._block, self._verdicts = block, {}
        key = (sender_peer_id, data)
        if key not in self._verdicts:
            try:
                self._verdicts[key] = self._validator(sender_peer_id, data)
            except Exception as exc:  # the verdict, kept for the other receivers
                self._verdicts[key] = exc
        verdict = self._verdicts[key]
        if isinstance(verdict, Exception):
            raise verdict
        return verdict


@dataclass
class VirtualPeer:
    """One virtual institution: its keys, backends, learner, state folder and (running) node."""

    name: str
    identity: Identity
    ledger: MemoryFederation
    content: MemoryContentStore
    gossip: MemoryGossip | None
    learner: LocalLearner
    state_dir: Path
    node: PeerNode | None = None
    done: bool = False
    error: FedchainError | None = None
    """Why the node stopped (e.g. removed from the federation)."""
    observers: list[RoundObserver] = field(default_factory=list)


@dataclass(frozen=True)
class TaskTiming:
    rounds: int
    round_duration: int = 60
    attest_duration: int = 60
    quorum: int | None = None
    max_samples: int = 1_000_000


class VirtualFederation:
    """Chain, content network, gossip and nodes of one simulated federation."""

    def __init__(
        self,
        root: Path,
        spec: TaskSpec,
        learners: Mapping[str, LocalLearner],
        initial_weights: StateDict,
        timing: TaskTiming,
        *,
        seed: int = 0,
        gossip: bool = True,
        observers: Callable[[str], Sequence[RoundObserver]] = lambda name: (),
        byzantine: Collection[str] = (),
    ) -> None:
        self.root = root
        # Members stepped only in passes in which no honest member acted (see step_all).
        self.byzantine = frozenset(byzantine)
        self.spec = spec
        self.seed = seed
        self.clock = VirtualClock(START_TIME)
        self.chain = MemoryChain(now=self.clock.now)
        self.content_net = MemoryContentNetwork()
        self.gossip_net: MemoryGossipNetwork | None = (
            MemoryGossipNetwork(wall_clock=False) if gossip else None
        )
        self._observers = observers
        self.deployer_identity = derived_identity(seed, "deployer")
        founders = {name: derived_identity(seed, name) for name in learners}
        self.members_only = spec.confidentiality == "members"
        # members-only content and secure aggregation's masks both need members' keys on-chain
        self._keys_on_chain = self.members_only or spec.secure_aggregation is not None
        self.audit_secret = self.encryption_secret("audit")
        keys: dict[str, Any] = {}
        if self._keys_on_chain:
            keys = {
                "encryption_keys": [public_key_of(self.encryption_secret(n)) for n in founders],
                "audit_key": public_key_of(self.audit_secret),
            }
        deployer = self.chain.deploy(
            self.deployer_identity.account,
            [i.address for i in founders.values()],
            [i.peer_id for i in founders.values()],
            5001,
            **keys,
        )
        self.deployer = deployer
        self._verdicts = SharedVerdicts(
            AnnouncementValidator(
                Domain(chain_id=deployer.chain_id, contract=deployer.address),
                1,  # the only task of a simulated federation
                ChainMembership(deployer),
                closed_sets=ChainMembership(deployer),  # reveals (secure aggregation)
            ),
            self.chain,
        )
        self.peers: dict[str, VirtualPeer] = {}
        for name, learner in learners.items():
            self._add_peer(name, founders[name], learner)
        first = next(iter(self.peers.values()))
        terms = TaskTerms(
            rounds=timing.rounds,
            quorum=timing.quorum or default_quorum(len(founders)),
            round_duration=timing.round_duration,
            attest_duration=timing.attest_duration,
            max_samples=timing.max_samples,
        )
        published = publish_task(first.ledger, first.content, spec, initial_weights, terms)
        self.task_id = published.task_id
        self.domain = Domain(chain_id=deployer.chain_id, contract=deployer.address)

    # -- peers ------------------------------------------------------------------

    def encryption_secret(self, name: str) -> bytes:
        """The X25519 secret of ``name`` (or of "audit"), derived from the seed."""
        return hashlib.sha256(f"fedchain simulated x25519/{self.seed}/{name}".encode()).digest()

    def _add_peer(self, name: str, identity: Identity, learner: LocalLearner) -> VirtualPeer:
        ledger = self.chain.client(identity.account)
        gossip = None
        if self.gossip_net is not None:
            gossip = self.gossip_net.join(identity.peer_id, validator=self._verdicts)
            gossip.start()
        content = self.content_net.store(name)
        for other in self.peers.values():  # a full mesh, as the members' Kubos swarm
            content.connect(other.content.address)
        peer = VirtualPeer(
            name=name,
            identity=identity,
            ledger=ledger,
            content=content,
            gossip=gossip,
            learner=learner,
            state_dir=self.root / "peers" / name,
            observers=list(self._observers(name)),
        )
        peer.state_dir.mkdir(parents=True, exist_ok=True)
        self.peers[name] = peer
        return peer

    def config(self, peer: VirtualPeer) -> PeerConfig:
        return PeerConfig.model_validate(
            {
                "institution": {"name": peer.name},
                "keys": {"eth_keystore": "unused", "libp2p_keystore": "unused"},
                "chain": {
                    "rpc_url": "http://in-memory",
                    "contract": self.deployer.address,
                    "task_id": self.task_id,
                },
                "ipfs": {"api": "/ip4/127.0.0.1/tcp/5001", "fetch_timeout": 5.0},
                "gossip": {"enabled": peer.gossip is not None},
                "data": {"partition": peer.name},
                "state_dir": str(peer.state_dir),
            }
        )

    def start(self, name: str) -> PeerNode:
        """A fresh node for ``name`` on its state folder and backends (a start or a restart)."""
        peer = self.peers[name]
        peer.node = PeerNode(
            cfg=self.config(peer),
            identity=peer.identity,
            ledger=peer.ledger,
            content=peer.content,
            gossip=peer.gossip,
            spec=self.spec,
            learner=peer.learner,
            clock=self.clock,
            executor=_inline,
            fetch_executor=_inline,
            observers=list(peer.observers),
            encryption_secret=self.encryption_secret(name),
        )
        peer.done = False
        peer.error = None
        return peer.node

    def start_all(self) -> None:
        for name in self.peers:
            self.start(name)

    def crash(self, name: str) -> None:
        """Lose the node as a killed process would (its backends and state folder stay)."""
        self.peers[name].node = None

    def admit(self, name: str, learner: LocalLearner) -> VirtualPeer:
        """Admit a new institution by the members' votes (a majority approves)."""
        identity = derived_identity(self.seed, name)
        key = public_key_of(self.encryption_secret(name)) if self._keys_on_chain else bytes(32)
        self._vote(ProposalKind.ADMIT, identity.address, identity.peer_id, key=key)
        return self._add_peer(name, identity, learner)

    def remove(self, name: str) -> None:
        """Remove an institution by the other members' votes; its node is left running."""
        self._vote(ProposalKind.REMOVE, self.peers[name].identity.address, "", exclude=name)

    def _vote(
        self,
        kind: ProposalKind,
        account: str,
        peer_id: str,
        exclude: str = "",
        key: bytes = bytes(32),
    ) -> None:
        voters = [
            p
            for p in self.peers.values()
            if p.name != exclude and p.ledger.is_member(p.identity.address)
        ]
        proposal = voters[0].ledger.propose(kind, account, peer_id, bytes(32), key)
        for voter in voters[1:]:
            if voter.ledger.proposal(proposal).executed:
                break
            voter.ledger.approve(proposal)

    # -- driving ------------------------------------------------------------------

    def running(self) -> list[VirtualPeer]:
        return [p for p in self.peers.values() if p.node is not None and not p.done]

    def step_peer(self, name: str) -> StepOutcome | None:
        """One step of ``name``'s node; None when the node stopped on an error (kept in
        ``peer.error``, as a real peer process would exit with it)."""
        peer = self.peers[name]
        assert peer.node is not None, f"{name} has no running node"
        try:
            outcome = peer.node.step()
        except FedchainError as exc:
            peer.error = exc
            peer.node.close()
            peer.node = None
            log.info("%s stopped: %s", name, exc)
            return None
        if outcome is StepOutcome.DONE:
            peer.done = True
            peer.node.close()
        return outcome

    def step_all(self) -> bool:
        """Step every running node once, in a fixed order; True if any of them acted (or
        finished, or stopped): False means every node waits for time to pass.

        Byzantine members (``byzantine``) are stepped only in a pass in which no honest member
        acted, and the pass ends after the first of them that acts: whatever it changed (e.g.
        its attestation finalized a round), the honest members act on it first.  So an attack
        that reads the round's honest updates finds every running honest member's update
        submitted (the clock only moves when all of them wait).
        """
        acted = False
        for peer in self.running():
            if peer.name not in self.byzantine:
                acted |= self.step_peer(peer.name) is not StepOutcome.WAITING
        if acted:
            return True
        for peer in self.running():
            if peer.name in self.byzantine and (
                self.step_peer(peer.name) is not StepOutcome.WAITING
            ):
                return True
        return False

    def advance(self) -> None:
        """Move the clock to just past the deadline the current round waits for."""
        task = self.deployer.task(self.task_id)
        info = self.deployer.round_info(self.task_id, task.current_round)
        now = self.clock.now()
        if info.status is RoundStatus.COLLECTING and now <= info.submit_deadline:
            self.clock.advance_to(info.submit_deadline + 1)
        elif info.status is RoundStatus.CLOSED and now <= info.attest_deadline:
            self.clock.advance_to(info.attest_deadline + 1)
        else:
            self.clock.advance(1.0)

    def task_complete(self) -> bool:
        return self.deployer.task(self.task_id).completed

    def run(self, *, until: Callable[[], bool] | None = None, max_passes: int = 100_000) -> None:
        """Drive the nodes until ``until()`` (default: every running node is done)."""
        stop = until or (lambda: not self.running())
        for _ in range(max_passes):
            if stop():
                return
            if not self.running():
                raise FedchainError("no node is running but the stop condition is not met")
            if not self.step_all():
                self.advance()
        raise FedchainError(f"the simulation did not end within {max_passes} passes")
