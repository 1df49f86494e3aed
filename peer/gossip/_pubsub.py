"""py-libp2p's Pubsub, hardened for a federation where a peer may be hostile.

Three defaults of libp2p 0.8.1 are unsafe or lossy for us:

* an exception in a message task (e.g. a garbage public key in a message) is
  collected by the service manager, which then cancels the whole pubsub
  service: one bad message from one peer would end gossip for the node;
* received messages go through a 32-slot subscription channel fed with
  ``send_nowait``, which drops silently when a burst arrives faster than it is
  read;
* each peer's outbound queue holds 32 RPCs and drops on overflow, silently.

This subclass contains errors per message / per stream, hands received
messages straight to a callback, and gives every peer a larger outbound queue
whose overflow is reported to a callback (so drops can be counted).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from libp2p.abc import IHost, INetStream, IPubsubRouter
from libp2p.peer.id import ID
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.rpc_queue import RpcQueue

logger = logging.getLogger("fedchain.peer.gossip")

MessageSink = Callable[[rpc_pb2.Message], None]


class CountingRpcQueue(RpcQueue):
    """An outbound queue that reports each RPC it refuses because it is full."""

    def __init__(self, *, max_size: int, max_message_size: int, on_drop: Callable[[], None]):
        super().__init__(max_size=max_size, max_message_size=max_message_size)
        self._on_drop = on_drop

    def push(self, rpc: rpc_pb2.RPC, priority: bool = False) -> bool:
        queued = super().push(rpc, priority)
        if not queued and not self.closed:
            self._on_drop()
        return queued


class GuardedPubsub(Pubsub):
    """Pubsub that survives malformed input and never drops deliveries silently."""

    def __init__(
        self,
        host: IHost,
        router: IPubsubRouter,
        *,
        deliver: MessageSink,
        outbound_queue_size: int,
        on_outbound_drop: Callable[[], None],
        **pubsub_options: Any,
    ) -> None:
        # Set before the base constructor: it registers our stream handler.
        self._deliver = deliver
        self._outbound_queue_size = outbound_queue_size
        self._on_outbound_drop = on_outbound_drop
        super().__init__(host, router, **pubsub_options)

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        """Pass a validated message for one of our topics to the sink (no buffer limit)."""
        if any(topic in self.topic_ids for topic in publish_message.topicIDs):
            self._deliver(publish_message)

    async def push_msg(self, msg_forwarder: ID, msg: rpc_pb2.Message) -> None:
        """Validate, deliver and relay one message; a remote message's errors stay local."""
        if msg_forwarder == self.my_id:
            await super().push_msg(msg_forwarder, msg)
            return
        try:
            await super().push_msg(msg_forwarder, msg)
        except Exception as error:
            log = logger.debug if self._shutting_down(error) else logger.warning
            log(
                "dropped a malformed pubsub message forwarded by %s: %s: %s",
                msg_forwarder,
                type(error).__name__,
                error,
            )

    async def stream_handler(self, stream: INetStream) -> None:
        """Read a peer's pubsub stream; garbage resets that stream only."""
        try:
            await super().stream_handler(stream)
        except Exception as error:
            peer_id = stream.muxed_conn.peer_id
            if self._shutting_down(error):
                logger.debug("pubsub stream of %s ended during shutdown: %r", peer_id, error)
                return
            logger.warning(
                "reset the pubsub stream of %s after unreadable input: %s: %s",
                peer_id,
                type(error).__name__,
                error,
            )
            try:
                await stream.reset()
            except Exception as reset_error:
                logger.debug("resetting the stream of %s failed: %s", peer_id, reset_error)
            self._handle_dead_peer(peer_id)

    def _shutting_down(self, error: Exception) -> bool:
        """True if ``error`` comes from our own shutdown rather than from a peer."""
        if not self.manager.is_running or self.manager.is_cancelled:
            return True
        # py-libp2p spawns per-message tasks into nurseries that may already be closing.
        return isinstance(error, RuntimeError) and "closed to new arrivals" in str(error)

    async def handle_sending_messages(
        self, peer_id: ID, stream: INetStream, queue: RpcQueue
    ) -> None:
        """Swap the peer's default 32-slot queue for a larger, counting one, then send."""
        if self.peer_queues.get(peer_id) is queue and not queue.closed:
            larger = CountingRpcQueue(
                max_size=self._outbound_queue_size,
                max_message_size=queue.max_message_size,
                on_drop=self._on_outbound_drop,
            )
            # pop() returns without yielding while items are queued, so nothing can
            # be pushed to the old queue between draining it and the swap.
            while len(queue):
                item = await queue.pop()
                if item is not None:
                    larger.push(item)
            self.peer_queues[peer_id] = larger
            queue = larger
        await super().handle_sending_messages(peer_id, stream, queue)
