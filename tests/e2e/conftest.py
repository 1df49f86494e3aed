"""Fixtures that bring up real local federations (chain + Kubo per hospital)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from consensus.protocol import RoundStatus
from consensus.task_spec import AggregationSpec, TaskSpec, TrainingSettings
from fedchain.errors import ToolchainError
from fedchain.localnet.chain_node import GethUnavailable, find_geth
from fedchain.localnet.devnet import LocalFederation, TaskParams, find_ipfs
from fedchain.localnet.placement import LOCAL, Placement
from models.tasks import get_task

SPEC = get_task("heart").default_spec(
    name="heart-e2e",
    training=TrainingSettings(epochs=1, lr=0.05, batch_size=32, seed=3),
    # FedAvg, not the default rule: audit_rounds re-derives its aggregates independently (NumPy)
    aggregation=AggregationSpec(rule="fedavg"),
)


@pytest.fixture(scope="session")
def ipfs_available() -> None:
    try:
        find_ipfs()
    except ToolchainError as exc:
        pytest.fail(f"Kubo is required for end-to-end tests: {exc}")


def require_chain(chain: str) -> None:
    """Skip a geth run only when ``make setup`` recorded that geth could not be installed."""
    if chain == "geth":
        try:
            find_geth()
        except GethUnavailable as exc:
            pytest.skip(str(exc))


def wait_task_done(fed: LocalFederation, rounds: int, timeout: float = 240.0) -> None:
    assert fed.deployer is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = fed.deployer.task(fed.task_id)
        if task.completed:
            return
        for name, proc in fed.peers.items():
            code = proc.returncode
            if code not in (None, 0):
                pytest.fail(f"peer {name} exited {code}:\n{proc.log_tail(60)}")
        time.sleep(0.2)
    logs = "\n".join(f"--- {n}\n{p.log_tail(40)}" for n, p in fed.peers.items())
    pytest.fail(f"task did not complete {rounds} rounds within {timeout} s\n{logs}")


def round_status(fed: LocalFederation, round_no: int) -> RoundStatus:
    assert fed.deployer is not None
    return RoundStatus(fed.deployer.round_info(fed.task_id, round_no).status)


@pytest.fixture
def federation_factory(tmp_path: Path, ipfs_available: None) -> Iterator[object]:
    feds: list[LocalFederation] = []

    def make(
        names: list[str],
        *,
        chain: str = "anvil",
        rounds: int = 2,
        quorum: int | None = None,
        extra_members: int = 0,
        fetch_timeout: float = 20.0,
        isolated: tuple[str, ...] = (),
        round_duration: int = 600,
        attest_duration: int = 600,
        max_samples: int = 1000,
        spec: TaskSpec = SPEC,
        data: Mapping[str, Mapping[str, Any]] | None = None,
        placements: Mapping[str, Placement] | None = None,
        chain_placement: Placement = LOCAL,
    ) -> LocalFederation:
        """``placements``/``chain_placement``: hosts of their own (see tests/e2e/netns.py)."""
        fed = LocalFederation(
            tmp_path / f"fed{len(feds)}",
            names,
            chain=chain,
            extra_members=extra_members,
            fetch_timeout=fetch_timeout,
            data=data,
            placements=placements,
            chain_placement=chain_placement,
        )
        feds.append(fed)
        fed.start(
            TaskParams(
                spec=spec,
                rounds=rounds,
                quorum=quorum or len(names),
                round_duration=round_duration,
                attest_duration=attest_duration,
                max_samples=max_samples,
            ),
            gossip_isolated=isolated,
        )
        return fed

    yield make
    for fed in feds:
        fed.close()


def wait_peers_exit(fed: LocalFederation, timeout: float = 60.0) -> None:
    """Peers leave on their own once the task completes (after claiming credit)."""
    for name, code in fed.wait_peers_exit(timeout).items():
        assert code == 0, f"peer {name} ended with {code}:\n{fed.peers[name].log_tail(60)}"
