"""The test playing a hostile member: it signs real transactions and adds real content to Kubo."""

from __future__ import annotations

import secrets
import time

import pytest
import torch

from consensus.protocol import RoundStatus
from consensus.serialization import weights_to_bytes
from consensus.task_spec import TaskSpec
from models.tasks import initial_weights
from peer.content.cid import cid_from_bytes, cid_to_bytes
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient


def wait_round_status(
    client: FederationClient, task_id: int, round_no: int, status: RoundStatus
) -> None:
    """Poll the chain until ``round_no`` is the open round and has ``status``."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        task = client.task(task_id)
        if task.current_round == round_no:
            info = client.round_info(task_id, round_no)
            if RoundStatus(info.status) is status:
                return
        elif task.current_round > round_no:
            pytest.fail(f"round {round_no} ended before it was {status.name}")
        time.sleep(0.05)
    pytest.fail(f"round {round_no} never became {status.name}")


def wait_first_submission(client: FederationClient, task_id: int, round_no: int) -> bytes:
    """The CID of the first update submitted in ``round_no`` (to copy it)."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        subs = client.submissions(task_id, round_no)
        if subs:
            return subs[0].cid
        time.sleep(0.05)
    pytest.fail(f"nobody submitted in round {round_no}")


class HostileContent:
    """Crafted updates for a task's model, added to a Kubo node of the federation."""

    def __init__(self, spec: TaskSpec, api_multiaddr: str) -> None:
        self.reference = initial_weights(spec)
        self.store = KuboContentStore(api_multiaddr)

    def _add(self, weights: dict[str, torch.Tensor]) -> bytes:
        return cid_to_bytes(self.store.add(weights_to_bytes(weights)))

    def huge_finite(self) -> bytes:
        """float32 values of about ±3e38: finite, so the finiteness check passes."""
        out = {}
        for k, v in self.reference.items():
            signs = torch.ones_like(v)
            signs.view(-1)[::2] = -1.0
            out[k] = (signs * 3.0e38).to(torch.float32)
        return self._add(out)

    def all_zero(self) -> bytes:
        return self._add({k: torch.zeros_like(v) for k, v in self.reference.items()})

    def nan(self) -> bytes:
        return self._add({k: torch.full_like(v, float("nan")) for k, v in self.reference.items()})

    def wrong_shape(self) -> bytes:
        return self._add({k: torch.zeros(v.numel() + 1) + 0.5 for k, v in self.reference.items()})

    def garbage(self) -> bytes:
        return cid_to_bytes(self.store.add(b"not a safetensors file " + secrets.token_bytes(64)))

    def oversize(self, size: int) -> bytes:
        return cid_to_bytes(self.store.add(secrets.token_bytes(size)))

    @staticmethod
    def unserved() -> bytes:
        """A well-formed CID whose content nobody holds."""
        return cid_to_bytes(
            cid_from_bytes(bytes([0x01, 0x55, 0x12, 0x20]) + secrets.token_bytes(32))
        )

    def close(self) -> None:
        self.store.close()


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory (VmHWM) in KiB, from /proc."""
    with open(f"/proc/{pid}/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmHWM for pid {pid}")
