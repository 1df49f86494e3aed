"""Peer-to-peer gossip of small signed control messages between federation peers.

``Libp2pGossip`` lives in ``peer.gossip.libp2p_gossip`` and is not imported here:
``import libp2p`` takes seconds, and code that only needs the interface or the
identity helpers should not pay for it.  ``MemoryGossipNetwork`` (``peer.gossip.memory``)
is its in-memory twin, for simulators and unit tests; both pass
``tests/peer/gossip/conformance.py``.
"""

from peer.gossip.abc import Gossip, GossipMessage
from peer.gossip.hook import Validator
from peer.gossip.memory import MemoryGossip, MemoryGossipNetwork
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from peer.gossip.stats import GossipStats

__all__ = [
    "Gossip",
    "GossipMessage",
    "GossipStats",
    "MemoryGossip",
    "MemoryGossipNetwork",
    "Validator",
    "generate_ed25519_seed",
    "peer_id_from_seed",
]
