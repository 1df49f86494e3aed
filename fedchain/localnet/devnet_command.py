"""``fedchain devnet``: the federation's infrastructure on one machine, peers started by hand.

It starts the chain and one Kubo per hospital, deploys and creates the task, writes each
hospital's config, prints how to start each peer, and then watches the services it started.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from consensus.protocol import default_quorum
from fedchain.interrupts import raise_if_interrupted
from fedchain.localnet.devnet import LocalFederation, TaskParams, check_quorum
from fedchain.localnet.plan import FederationPlan, plan_for


@dataclass(frozen=True)
class DevnetOptions:
    """What ``fedchain devnet`` creates when it starts a new federation."""

    hospitals: int | None
    rounds: int
    chain: str
    quorum: int | None = None
    round_duration: int = 600
    attest_duration: int = 600
    task_name: str = "heart"

    def plan(self) -> FederationPlan:
        return plan_for(self.task_name, self.hospitals)

    def task(self) -> TaskParams:
        plan = self.plan()
        n = len(plan.institutions)
        quorum = self.quorum if self.quorum is not None else default_quorum(n)
        return TaskParams(
            spec=plan.spec,
            rounds=self.rounds,
            quorum=check_quorum(quorum, n),
            round_duration=self.round_duration,
            attest_duration=self.attest_duration,
            max_samples=plan.max_samples,
        )


def run_devnet(options: DevnetOptions, *, folder: Path | None, persistent: bool) -> int:
    """Bring up the federation's infrastructure and let the operator start the peers by hand.

    With ``persistent`` the chain is kept in ``folder``, and a folder that already holds a
    devnet is resumed (same contract, task, keys and configs) instead of replaced.
    """
    console = Console(soft_wrap=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = folder if folder is not None else Path("runs") / f"devnet-{stamp}"
    resume = persistent and LocalFederation.exists_in(out_dir)
    task = None if resume else options.task()  # a bad --quorum fails before anything starts
    plan = options.plan()
    names = list(plan.institutions)
    with LocalFederation(
        out_dir, names, chain=options.chain, persist_chain=persistent, data=plan.data
    ) as fed:
        with console.status("starting chain, Kubo daemons, deploying the contract…"):
            if task is None:
                fed.resume()
            else:
                fed.start(task)
        assert fed.chain is not None and fed.deployer is not None
        if resume:
            console.print(f"resumed the devnet saved in {out_dir} (its own hospitals and task)")
        console.print(f"chain      {fed.chain.rpc_url} (id {fed.deployer.chain_id})")
        console.print(f"contract   {fed.deployer.address}, task {fed.task_id}")
        console.print(f"password   in {out_dir / 'password'} (demo keys only)")
        console.print(f"processes  PIDs and ports in {fed.processes.path}")
        console.print("start each hospital's peer in its own terminal:")
        for h in fed.hospitals:
            console.print(f"  fedchain peer run --config {h.config_path}")
        console.print("Ctrl-C stops the chain and the Kubo daemons.")
        _watch_services(fed, console)
    return 0


def _watch_services(fed: LocalFederation, console: Console) -> None:
    """Until interrupted: say once, naming its log, when a service this devnet started dies."""
    reported: set[str] = set()
    while True:
        raise_if_interrupted()
        for name, log_path in fed.stopped_services():
            if name not in reported:
                reported.add(name)
                console.print(f"[red]{name} stopped unexpectedly[/]; its log: {log_path}")
        time.sleep(1)
