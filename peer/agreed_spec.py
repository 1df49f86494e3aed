"""The task spec a federation agreed on, read by the CID the contract names and verified."""

from __future__ import annotations

import logging

from consensus.task_spec import MAX_SPEC_BYTES, TaskSpec
from fedchain.errors import ContentError
from peer.content.abc import ContentStore
from peer.content.unixfs import file_cid
from peer.ledger.abc import FederationLedger

log = logging.getLogger("fedchain.peer.spec")


def read_spec(
    ledger: FederationLedger, content: ContentStore, task_id: int, timeout: float
) -> TaskSpec:
    """The spec of ``task_id``; ContentError if the bytes do not hash to the on-chain CID."""
    spec_cid = ledger.spec_cid(task_id)
    data = content.get(spec_cid, timeout=timeout, max_bytes=MAX_SPEC_BYTES)
    if file_cid(data) != spec_cid:
        raise ContentError(f"task spec content does not hash to {spec_cid}")
    spec = TaskSpec.from_bytes(data)
    log.info(
        "task %d: %s (model %s, rule %s)",
        task_id,
        spec.name,
        spec.model.arch,
        spec.aggregation.rule,
    )
    return spec
