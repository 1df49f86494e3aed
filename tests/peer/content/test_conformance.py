"""The ContentStore conformance suite over every backend: real Kubo daemons and the memory twin.

Kubo-only behaviour (the CLI's own import, daemon restarts, the HTTP API, blocks
crafted with ``ipfs block put``) is tested in ``test_kubo_store.py``; the twin's
test hooks in ``test_memory_store.py``.
"""

from __future__ import annotations

import pytest

from tests.peer.content.conformance import ContentStoreConformance

# ipfshttpclient 0.7 passes urllib3 2.x an obsolete argument on every request.
pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning")


class TestContentStore(ContentStoreConformance):
    """``peer_a``, ``peer_b`` and ``open_store_a`` come from conftest, per ``content_backend``."""
