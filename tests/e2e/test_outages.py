"""A hospital's worst day: the chain RPC freezes, a Kubo dies, a peer is killed, one never returns.

Three hospitals with the default quorum (a strict majority, 2 of 3).  In turn: the chain is
paused (SIGSTOP) for 30 s; one hospital's Kubo is stopped for 30 s and started again while its
peer keeps running; one peer is SIGKILLed mid-task and restarted with the same config; at last
that peer is killed for good.  Every surviving peer must ride each outage out and finish the task,
the peer whose Kubo restarted must rejoin the swarm and agree on every later round, and the
restarted peer must end with exactly the credit it earned (rebuilt from the chain).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedchain.localnet.devnet import LocalFederation
from fedchain.replay import Replayer
from peer.content.kubo import KuboContentStore
from tests.e2e.conftest import wait_task_done

pytestmark = pytest.mark.e2e

OUTAGE = 30.0
ROUNDS = 6
CAP = 1000
FEDCHAIN = str(Path(sys.executable).parent / "fedchain")


def wait_finalized(fed: LocalFederation, round_no: int, timeout: float = 240.0) -> None:
    """Until ``round_no`` has finalized (failed rounds are retried by the protocol)."""
    assert fed.deployer is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        task = fed.deployer.task(fed.task_id)
        if task.finalized_rounds >= round_no:
            return
        for name, proc in fed.peers.items():
            if proc.returncode not in (None, 0):
                pytest.fail(f"peer {name} exited {proc.returncode}:\n{proc.log_tail(60)}")
        time.sleep(0.2)
    logs = "\n".join(f"--- {n}\n{p.log_tail(30)}" for n, p in fed.peers.items())
    pytest.fail(f"{round_no} rounds did not finalize within {timeout} s\n{logs}")


def kill(fed: LocalFederation, name: str) -> None:
    """SIGKILL a peer (no chance to clean up), then reap it."""
    proc = fed.peers.pop(name)
    assert proc.pid is not None
    os.kill(proc.pid, signal.SIGKILL)
    proc.stop(timeout=5)


def history(fed: LocalFederation, name: str) -> list[dict[str, object]]:
    path = fed.hospital(name).home / "state" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def agreed_scores(fed: LocalFederation, witness: str) -> dict[str, int]:
    """Each member's total agreed score, re-derived from the chain and IPFS by an auditor.

    An update whose sender's Kubo was down when it was fetched is left out, as designed: the
    auditor takes those members from ``witness``, a peer that never crashed; every round's
    recomputed aggregate and scores root must then be the ones it finalized with.
    """
    assert fed.deployer is not None
    # no member here is hostile: everything the witness left out was unavailable
    unavailable = {int(e["round"]): list(e["left_out"]) for e in history(fed, witness)}
    store = KuboContentStore(fed.hospitals[0].kubo.api_multiaddr)
    totals: dict[str, int] = {}
    try:
        for replayed in Replayer(fed.deployer, store, fed.task_id).replay_all(unavailable):
            assert replayed.ok, replayed
            for member, score in replayed.scores:
                totals[member] = totals.get(member, 0) + score
    finally:
        store.close()
    return totals


def test_federation_rides_out_outages_and_a_lost_member(federation_factory) -> None:
    names = ["cleveland", "hungary", "va"]
    fed = federation_factory(
        names, rounds=ROUNDS, quorum=2, round_duration=60, attest_duration=60, max_samples=CAP
    )
    assert fed.chain is not None and fed.deployer is not None
    for name in names:
        fed.spawn_peer(name)
    wait_finalized(fed, 1)

    # The chain's RPC freezes.
    chain_pid = fed.chain.pid
    assert chain_pid is not None
    os.kill(chain_pid, signal.SIGSTOP)
    time.sleep(OUTAGE)
    os.kill(chain_pid, signal.SIGCONT)
    wait_finalized(fed, 2)

    # Hungary's own Kubo dies and comes back on the same repository while its peer runs.
    kubo = fed.hospital("hungary").kubo
    kubo.stop()
    time.sleep(OUTAGE)
    kubo.start()
    restarted_after = fed.deployer.task(fed.task_id).current_round
    wait_finalized(fed, 3)

    # VA's peer is killed mid-task and restarted with the same config.
    kill(fed, "va")
    restart_round = fed.deployer.task(fed.task_id).current_round
    fed.spawn_peer("va")
    wait_finalized(fed, 5)

    # VA is lost for good: the other two finish with the default quorum.
    kill(fed, "va")
    wait_task_done(fed, rounds=ROUNDS, timeout=400)
    for name in ("cleveland", "hungary"):
        code = fed.wait_peers_exit(120)[name]
        assert code == 0, f"{name} ended with {code}:\n{fed.peers[name].log_tail(60)}"

    for entry in history(fed, "hungary"):
        if int(entry["round"]) > restarted_after and entry["status"] == "finalized":
            assert entry["agreed"] is True, entry
    # Every round is in each record, including the ones VA missed while it was down.
    final_round = fed.deployer.task(fed.task_id).current_round
    for name in ("cleveland", "hungary"):
        assert {int(e["round"]) for e in history(fed, name)} == set(range(1, final_round + 1))
    # VA's record holds every round before its crash and restart (written live or on restart).
    assert {int(e["round"]) for e in history(fed, "va")} >= set(range(1, restart_round))

    # VA's claims are rebuilt from the chain: `fedchain claim` finds whatever is still unclaimed.
    va = fed.hospital("va")
    done = subprocess.run(
        [FEDCHAIN, "claim", "--config", str(va.config_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    expected = agreed_scores(fed, witness="cleveland")
    for h in fed.hospitals:
        got = fed.deployer.contribution_of(h.identity.address)
        assert got == expected.get(h.identity.address, 0), (h.name, got, expected)
