"""The ``fedchain`` command line (typer).

Every expected failure (bad config, wrong password, unreachable chain or Kubo)
ends the process with a non-zero code and one line saying what is wrong and what
to do; tracebacks are kept for bugs.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from fedchain.errors import ConfigError, FedchainError
from fedchain.interrupts import EXIT_INTERRUPTED, interrupt_on_signals, received_signal
from fedchain.logs import LogFormat, choose_log_format, error_line, setup_logging

app = typer.Typer(
    add_completion=False, no_args_is_help=True, help=__doc__, pretty_exceptions_enable=False
)
peer_app = typer.Typer(no_args_is_help=True, help="Run this institution's peer node.")
keys_app = typer.Typer(no_args_is_help=True, help="Create encrypted key files.")
app.add_typer(peer_app, name="peer")
app.add_typer(keys_app, name="keys")
kubo_app = typer.Typer(
    no_args_is_help=True, help="This institution's Kubo node in the private IPFS network."
)
app.add_typer(kubo_app, name="kubo")

EXIT_ERROR = 2

SwarmPeers = Annotated[
    list[str] | None,
    typer.Option(help="Another institution's Kubo swarm multiaddr (…/p2p/<id>); repeatable."),
]
Bootstrap = Annotated[
    list[str] | None,
    typer.Option(help="Another peer's gossip multiaddr (…/p2p/<peer id>); repeatable."),
]


@app.callback()
def _global_options(
    log_format: Annotated[
        LogFormat,
        typer.Option(
            help="Logs on stderr: text (readable) or json (one object per line).",
            envvar="FEDCHAIN_LOG_FORMAT",
        ),
    ] = "text",
) -> None:
    choose_log_format(log_format)


def _setup_logging(verbose: bool) -> None:
    setup_logging(verbose)


@peer_app.command("run")
def peer_run(
    config: Annotated[Path, typer.Option("--config", "-c", help="The institution's TOML file.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Join the federation and take part in rounds until the task completes."""
    _setup_logging(verbose)
    from peer.config import load_config

    cfg = load_config(config)
    from peer.startup import run_peer

    raise typer.Exit(run_peer(cfg))


@app.command("claim")
def peer_claim(
    config: Annotated[Path, typer.Option("--config", "-c", help="The institution's TOML file.")],
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Claim every contribution this institution earned in its task and has not claimed yet."""
    _setup_logging(verbose)
    from peer.config import load_config
    from peer.startup import claim_all

    claimed = claim_all(load_config(config))
    for round_no, score in claimed:
        typer.echo(f"round {round_no}: claimed {score}")
    typer.echo(f"{len(claimed)} round(s) claimed now")


@keys_app.command("new")
def keys_new(
    out_dir: Annotated[Path, typer.Argument(help="Folder for eth.json and libp2p.json.")],
    password_env: Annotated[str, typer.Option(help="Variable holding the password.")] = (
        "FEDCHAIN_KEY_PASSWORD"
    ),
) -> None:
    """Create this institution's Ethereum key and libp2p identity, encrypted at rest."""
    from peer.identity import create_identity
    from peer.keystore import resolve_password

    ident = create_identity(out_dir, resolve_password(password_env, None))
    typer.echo(f"address  {ident.address}\npeer id  {ident.peer_id}")


@kubo_app.command("swarm-key")
def kubo_swarm_key(
    out: Annotated[Path, typer.Argument(help="Where to write the new swarm.key.")],
) -> None:
    """Create the federation's swarm key (once, by the consortium); never overwrites."""
    from fedchain.ops.kubo_setup import write_swarm_key

    typer.echo(f"wrote {write_swarm_key(out)}; give it to each institution over a private channel")


@kubo_app.command("configure")
def kubo_configure(
    repo: Annotated[Path, typer.Option(help="The Kubo repo (IPFS_PATH); created if missing.")],
    swarm_key: Annotated[Path, typer.Option(help="The consortium's swarm.key.")],
    swarm_host: Annotated[
        str, typer.Option(help="This host's address the other institutions dial.")
    ],
    swarm_port: Annotated[int, typer.Option(min=1, max=65535)] = 4001,
    api_port: Annotated[int, typer.Option(min=1, max=65535, help="On loopback only.")] = 5001,
    peer: Annotated[
        list[str] | None,
        typer.Option(help="Another institution's swarm multiaddr (…/p2p/<id>); repeatable."),
    ] = None,
) -> None:
    """Configure a Kubo repo for the private network; print the swarm address to share.
    Run it with the daemon stopped, then start `ipfs daemon` with IPFS_PATH=<repo> and
    LIBP2P_FORCE_PNET=1."""
    from fedchain.localnet.devnet import find_ipfs
    from fedchain.ops.kubo_setup import configure_kubo

    address = configure_kubo(
        find_ipfs(),
        repo,
        swarm_key,
        swarm_host,
        swarm_port=swarm_port,
        api_port=api_port,
        peers=peer or (),
    )
    typer.echo(f"configured {repo}\nswarm address (send it to the consortium)  {address}")


@app.command("init")
def init_cmd(
    institution: Annotated[str, typer.Argument(help="Short name: letters, digits, _.-")],
    folder: Annotated[
        Path | None, typer.Option("--dir", help="Where to write (default ./<institution>).")
    ] = None,
    rpc_url: Annotated[str, typer.Option(help="The chain's JSON-RPC URL.")] = (
        "http://127.0.0.1:8545"
    ),
    contract: Annotated[
        str | None, typer.Option(help="The Federation contract, once deployed.")
    ] = None,
    task_id: Annotated[int, typer.Option(min=1)] = 1,
    ipfs_api: Annotated[str, typer.Option(help="The own Kubo RPC multiaddr.")] = (
        "/ip4/127.0.0.1/tcp/5001"
    ),
    gossip_host: Annotated[
        str, typer.Option(help="Address gossip listens on (default: all interfaces).")
    ] = "0.0.0.0",
    gossip_port: Annotated[int, typer.Option(min=1, max=65535)] = 4101,
    data: Annotated[str, typer.Option(help="Own records, relative to --dir.")] = (
        "data/records.csv"
    ),
    partition: Annotated[
        str | None, typer.Option(help="A built-in partition instead of --data (trials).")
    ] = None,
    password_env: Annotated[str, typer.Option(help="Variable holding the password.")] = (
        "FEDCHAIN_KEY_PASSWORD"
    ),
    swarm_peer: SwarmPeers = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Create this institution's encrypted keys and a commented peer config; print what to
    send to the consortium. Never overwrites existing keys or config. Before the contract
    exists, leave out --contract and run `fedchain use-task` once it is deployed."""
    from fedchain.ops.init import check_institution_name, init_institution
    from fedchain.ops.peer_toml import PLACEHOLDER_CONTRACT, PeerSettings
    from peer.keystore import resolve_password

    check_institution_name(institution)  # before the password, so a typo is named first
    settings = PeerSettings(
        institution=institution,
        rpc_url=rpc_url,
        contract=contract or PLACEHOLDER_CONTRACT,
        task_id=task_id,
        ipfs_api=ipfs_api,
        gossip_host=gossip_host,
        gossip_port=gossip_port,
        data_path=None if partition else data,
        partition=partition,
        password_env=password_env,
        swarm_peers=tuple(swarm_peer or ()),
        bootstrap=tuple(bootstrap or ()),
    )
    password = resolve_password(password_env, None)
    done = init_institution(settings, folder or Path(institution), password)
    typer.echo(
        f"wrote {done.config} and {', '.join(str(k) for k in done.keys)}\n"
        "send these to the consortium:\n"
        f"address         {done.address}\n"
        f"peer id         {done.peer_id}\n"
        f"encryption key  {done.encryption_public_key}"
    )


@app.command("use-task")
def use_task_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="The institution's TOML file.")],
    task_id: Annotated[int, typer.Option(min=1, help="As `fedchain create-task` printed it.")],
    contract: Annotated[
        str | None, typer.Option(help="The Federation contract, as `fedchain deploy` printed it.")
    ] = None,
) -> None:
    """Point this peer's config at a task (and contract): after the consortium deploys, or
    when a task is upgraded. Only those two values change; comments and the rest are kept."""
    from fedchain.ops.config_edit import use_task

    done = use_task(config, task_id, contract)
    old, new = done.old.chain, done.new.chain
    typer.echo(
        f"{done.config}: contract {old.contract} -> {new.contract}, "
        f"task {old.task_id} -> {new.task_id}\n"
        f"check it with `fedchain status --config {done.config}`"
    )


@app.command("set-peers")
def set_peers_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="The institution's TOML file.")],
    swarm_peer: SwarmPeers = None,
    bootstrap: Bootstrap = None,
) -> None:
    """Set the other institutions' Kubo swarm addresses and/or gossip bootstrap addresses in
    this peer's config (each list given replaces the old one; the rest of the file is kept)."""
    from fedchain.ops.config_edit import set_peers

    done = set_peers(config, swarm_peer, bootstrap)
    typer.echo(
        f"{done.config}: {len(done.new.ipfs.swarm_peers)} Kubo swarm peers, "
        f"{len(done.new.gossip.bootstrap)} gossip bootstrap peers\n"
        f"check it with `fedchain status --config {done.config}`"
    )


@app.command("status")
def status_cmd(
    config: Annotated[Path, typer.Option("--config", "-c", help="The institution's TOML file.")],
) -> None:
    """One line each: membership, task and round, own submissions, credit, chain RPC, Kubo,
    gossip. Reads the chain, Kubo and the peer's own files only; exits 1 if anything is down."""
    from fedchain.ops.status import print_status, read_status
    from peer.config import load_config

    lines = read_status(load_config(config), config)
    raise typer.Exit(print_status(lines))


@app.command("report")
def report_cmd(
    run: Annotated[Path, typer.Argument(help="A demo or simulate run, or a peer's state_dir.")],
    out: Annotated[Path | None, typer.Option(help="Default <run>/report.html.")] = None,
) -> None:
    """Write a self-contained HTML report of a run (plots embedded); print its path."""
    from fedchain.ops.report import write_report

    typer.echo(write_report(run, out))


@app.command("dashboard")
def dashboard_cmd(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="A peer's TOML file (its view).")
    ] = None,
    rpc_url: Annotated[str | None, typer.Option(help="Auditor: the chain's JSON-RPC URL.")] = None,
    contract: Annotated[str | None, typer.Option(help="Auditor: the Federation address.")] = None,
    ipfs_api: Annotated[
        str | None, typer.Option(help="A Kubo RPC multiaddr (default with --config: its own).")
    ] = None,
    records: Annotated[
        Path | None, typer.Option(help="Auditor: a run folder or a peer's state_dir to show.")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond loopback a token is made.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535)] = 8765,
) -> None:
    """Serve a live web page of the federation: members, tasks, rounds, quality, credit, gas, ε."""
    from fedchain.ops.dashboard.command import run_dashboard, sources_from_options

    sources = sources_from_options(config, rpc_url, contract, ipfs_api, records)
    raise typer.Exit(run_dashboard(sources, host=host, port=port, echo=typer.echo))


@app.command("deploy")
def deploy_cmd(
    rpc_url: Annotated[str, typer.Option(help="The chain's JSON-RPC URL.")],
    keystore: Annotated[Path, typer.Option(help="Deployer's encrypted Ethereum keystore.")],
    founders: Annotated[
        Path, typer.Option(help="JSON: founders (address, peer_id), approval_bps.")
    ],
    password_env: Annotated[str, typer.Option()] = "FEDCHAIN_KEY_PASSWORD",
) -> None:
    """Deploy the Federation contract with its founding members; print its address."""
    _setup_logging(False)
    from fedchain.consortium import deploy_federation
    from peer.keystore import resolve_password

    password = resolve_password(password_env, None)
    typer.echo(deploy_federation(rpc_url, keystore, password, founders))


@app.command("propose")
def propose_cmd(
    kind: Annotated[str, typer.Argument(help="admit or remove")],
    account: Annotated[str, typer.Option(help="The institution's Ethereum address.")],
    rpc_url: Annotated[str, typer.Option(help="The chain's JSON-RPC URL.")],
    contract: Annotated[str, typer.Option(help="The Federation contract's address.")],
    keystore: Annotated[Path, typer.Option(help="This member's encrypted Ethereum keystore.")],
    peer_id: Annotated[str, typer.Option(help="The newcomer's libp2p peer ID (admit).")] = "",
    metadata: Annotated[
        Path | None, typer.Option(help="A document about the institution; its digest is kept.")
    ] = None,
    encryption_key: Annotated[
        str,
        typer.Option(help="The newcomer's X25519 public key, hex, as `fedchain init` printed it."),
    ] = "",
    password_env: Annotated[str, typer.Option()] = "FEDCHAIN_KEY_PASSWORD",
) -> None:
    """Propose to admit or remove an institution; this member's approval counts at once."""
    _setup_logging(False)
    from fedchain.governance import describe, propose
    from peer.keystore import resolve_password
    from peer.ledger.types import ProposalKind

    kinds = {"admit": ProposalKind.ADMIT, "remove": ProposalKind.REMOVE}
    if kind not in kinds:
        raise ConfigError(f"proposal kind {kind!r} is unknown; use admit or remove")
    password = resolve_password(password_env, None)
    info, bps = propose(
        rpc_url,
        contract,
        keystore,
        password,
        kind=kinds[kind],
        account=account,
        peer_id=peer_id,
        metadata=metadata,
        encryption_key=encryption_key,
    )
    typer.echo(describe(info, bps))


@app.command("approve")
def approve_cmd(
    proposal: Annotated[int, typer.Argument(min=1, help="The proposal's number.")],
    rpc_url: Annotated[str, typer.Option(help="The chain's JSON-RPC URL.")],
    contract: Annotated[str, typer.Option(help="The Federation contract's address.")],
    keystore: Annotated[Path, typer.Option(help="This member's encrypted Ethereum keystore.")],
    password_env: Annotated[str, typer.Option()] = "FEDCHAIN_KEY_PASSWORD",
) -> None:
    """Approve an open proposal; the approval that reaches the threshold executes it."""
    _setup_logging(False)
    from fedchain.governance import approve, describe
    from peer.keystore import resolve_password

    password = resolve_password(password_env, None)
    info, bps = approve(rpc_url, contract, keystore, password, proposal)
    typer.echo(describe(info, bps))


ROUND_DURATION_HELP = (
    "Seconds each round collects updates. Round 1's window starts when the task is created, so "
    "it must cover every peer's start-up (measured: about 20 s per peer process on 2 cores; "
    "peers sharing a machine add up, e.g. about 80 s for 4) plus one local training run and "
    "upload; later rounds need only training and upload."
)


@app.command("create-task")
def create_task_cmd(
    rpc_url: Annotated[str, typer.Option()],
    contract: Annotated[str, typer.Option()],
    keystore: Annotated[Path, typer.Option(help="A member's encrypted Ethereum keystore.")],
    ipfs_api: Annotated[str, typer.Option(help="The member's Kubo RPC multiaddr.")],
    spec: Annotated[Path, typer.Option(help="Task spec JSON (model, rule, training).")],
    rounds: Annotated[int, typer.Option(min=1)],
    max_samples: Annotated[
        int,
        typer.Option(
            min=1,
            max=2**64 - 1,
            help="The most training samples any one member may claim per round; FedAvg "
            "weight and contribution credit are bounded by it.",
        ),
    ],
    quorum: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Updates, and identical attestations, a round needs; must be more than half "
            "the members. Default: ceil(2n/3) of the current members n (n=2 -> 2, 4 -> 3).",
        ),
    ] = None,
    initial_model: Annotated[
        Path | None, typer.Option(help="safetensors; default: from spec")
    ] = None,
    round_duration: Annotated[int, typer.Option(min=1, help=ROUND_DURATION_HELP)] = 600,
    attest_duration: Annotated[int, typer.Option(min=1, help="Seconds to attest.")] = 600,
    password_env: Annotated[str, typer.Option()] = "FEDCHAIN_KEY_PASSWORD",
) -> None:
    """Publish a task spec and initial model to IPFS and open the task on-chain."""
    _setup_logging(False)
    from fedchain.consortium import TaskTerms, create_task
    from peer.keystore import resolve_password

    terms = TaskTerms(
        quorum=quorum,
        rounds=rounds,
        round_duration=round_duration,
        attest_duration=attest_duration,
        max_samples=max_samples,
    )
    password = resolve_password(password_env, None)
    typer.echo(
        create_task(rpc_url, contract, keystore, password, ipfs_api, spec, initial_model, terms)
    )


ROUND_1_HELP = (
    "Round 1's window opens when the task is created, before any peer runs: it must cover "
    "starting every peer by hand (about 20 s per peer process on a 2-core machine) plus one "
    "local training."
)


TASK_HELP = "Built-in task: heart (4 hospitals), hapt (6 institutions, 2 lack a gyroscope), breast."
PEERS_HELP = "Institutions (default: the task's own; heart 2-4, hapt 2-15, breast 2-20)."


@app.command("devnet")
def devnet_cmd(
    hospitals: Annotated[int | None, typer.Option(min=2, help=PEERS_HELP)] = None,
    task: Annotated[str, typer.Option(help=TASK_HELP)] = "heart",
    rounds: Annotated[int, typer.Option(min=1)] = 5,
    chain: Annotated[str, typer.Option(help="anvil, ganache or geth (1 s blocks)")] = "anvil",
    out: Annotated[
        Path | None, typer.Option(help="Folder (default runs/devnet-<time>); not kept for reuse.")
    ] = None,
    quorum: Annotated[
        int | None,
        typer.Option(min=1, help="Updates a round needs (default: 2/3 of hospitals, rounded up)."),
    ] = None,
    round_duration: Annotated[
        int, typer.Option(min=1, help="Seconds each round collects updates. " + ROUND_1_HELP)
    ] = 600,
    attest_duration: Annotated[
        int, typer.Option(min=1, help="Seconds after a round's submission deadline to attest.")
    ] = 600,
    state: Annotated[
        Path | None,
        typer.Option(
            help="Keep the devnet (chain state, keys, configs, Kubo repos) in this folder; run "
            "again with the same folder after a stop to resume the same federation."
        ),
    ] = None,
) -> None:
    """Start a chain and one Kubo per hospital, deploy, write peer configs; wait for Ctrl-C."""
    _setup_logging(False)
    from fedchain.localnet.devnet_command import DevnetOptions, run_devnet

    if out is not None and state is not None:
        raise typer.BadParameter("give --out or --state, not both (--state is the folder)")
    options = DevnetOptions(
        hospitals=hospitals,
        rounds=rounds,
        chain=chain,
        quorum=quorum,
        round_duration=round_duration,
        attest_duration=attest_duration,
        task_name=task,
    )
    raise typer.Exit(run_devnet(options, folder=state or out, persistent=state is not None))


@app.command("demo")
def demo(
    task: Annotated[str, typer.Option(help=TASK_HELP)] = "heart",
    peers: Annotated[int | None, typer.Option(min=2, help=PEERS_HELP)] = None,
    rounds: Annotated[int, typer.Option(min=1, max=100)] = 5,
    chain: Annotated[str, typer.Option(help="anvil, ganache or geth (1 s blocks)")] = "anvil",
    out: Annotated[Path | None, typer.Option(help="Output folder (default runs/<time>).")] = None,
    dashboard: Annotated[
        bool, typer.Option(help="Serve the live dashboard on loopback and print its URL.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Bring up a local federation of institutions and run training rounds end to end."""
    _setup_logging(verbose)
    from fedchain.demo import run_demo

    raise typer.Exit(
        run_demo(task=task, peers=peers, rounds=rounds, chain=chain, out=out, dashboard=dashboard)
    )


@app.command("simulate")
def simulate_cmd(
    task: Annotated[str, typer.Option(help="A built-in task: heart, hapt or breast.")] = "heart",
    peers: Annotated[int, typer.Option(min=1, max=1000, help="Virtual institutions.")] = 4,
    rounds: Annotated[int, typer.Option(min=1, max=10_000)] = 5,
    seed: Annotated[int, typer.Option(min=0, help="Same seed, same aggregates.")] = 0,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default runs/simulate-<time>).")
    ] = None,
    gossip: Annotated[bool, typer.Option(help="Announce updates over in-memory gossip.")] = True,
    local_only: Annotated[
        bool, typer.Option(help="Also train each institution alone, for comparison.")
    ] = True,
    attack: Annotated[
        str | None,
        typer.Option(help="Byzantine members play this attack (sign-flip, scaling, ...)."),
    ] = None,
    attack_param: Annotated[
        list[str] | None,
        typer.Option(help="An attack parameter as key=value (TOML value); repeatable."),
    ] = None,
    byzantine: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="How many members are Byzantine, chosen from the seed (default 1 with --attack).",
        ),
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(help="Encode updates with this codec (none, fp16, int8, topk)."),
    ] = None,
    encoding_param: Annotated[
        list[str] | None,
        typer.Option(help="A codec parameter as key=value, e.g. fraction=0.01; repeatable."),
    ] = None,
    compress: Annotated[
        str | None,
        typer.Option(help="Compress encoded updates losslessly after the codec (deflate)."),
    ] = None,
    dp_epsilon: Annotated[
        float | None,
        typer.Option(
            help="Differential privacy: DP-SGD in every institution with this target epsilon "
            "(> 0) over the task (noise derived from it).",
        ),
    ] = None,
    dp_clip: Annotated[float, typer.Option(help="DP-SGD per-sample clipping norm (> 0).")] = 1.0,
    secure_aggregation: Annotated[
        bool,
        typer.Option(
            help="Masked updates (secure aggregation) instead of nodes on a chain: each round "
            "is checked to equal fixed-point FedAvg.",
        ),
    ] = False,
    clip_norm: Annotated[
        float, typer.Option(help="Secure aggregation: each change is clipped to this L2 norm.")
    ] = 5.0,
    dropouts: Annotated[
        int, typer.Option(min=0, help="Secure aggregation: members sitting out each round.")
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a whole federation in this process: real peer nodes on an in-memory chain, content
    network and gossip, on a virtual clock; reproducible per seed."""
    _setup_logging(verbose)
    if not verbose:
        logging.getLogger("fedchain").setLevel(logging.WARNING)
    if secure_aggregation:
        _simulate_secure(
            task,
            peers,
            rounds,
            seed,
            out,
            clip_norm,
            dropouts,
            mixed=attack or encoding or compress or dp_epsilon,
        )
        return
    from consensus.task_spec import PrivacySettings
    from fedchain.simulator.run import simulate

    if dp_epsilon is not None and not dp_epsilon > 0:
        raise typer.BadParameter(f"must be > 0, got {dp_epsilon}", param_hint="--dp-epsilon")
    if not dp_clip > 0:
        raise typer.BadParameter(f"must be > 0, got {dp_clip}", param_hint="--dp-clip")
    params = _key_values(attack_param or [], "--attack-param")
    k = byzantine if byzantine is not None else (1 if attack is not None else 0)
    chosen = None
    if encoding is not None or encoding_param or compress is not None:
        from consensus.codecs.pipeline import build_encoding
        from consensus.task_spec import EncodingSpec

        codec_params = _key_values(encoding_param or [], "--encoding-param")
        how = compress or "none"
        build_encoding(encoding or "none", codec_params, how)  # ConfigError naming what is wrong
        chosen = EncodingSpec(codec=encoding or "none", params=codec_params, compress=how)
    result = simulate(
        task,
        peers,
        rounds,
        seed,
        out=out,
        gossip=gossip,
        local_only=local_only,
        attack=attack,
        attack_params=params,
        byzantine=k,
        encoding=chosen,
        privacy=None
        if dp_epsilon is None
        else PrivacySettings(target_epsilon=dp_epsilon, max_grad_norm=dp_clip),
    )
    typer.echo(
        f"{len(result.aggregate_cids)} rounds in {result.wall_seconds:.1f} s; "
        f"record written to {result.out_dir / 'record.json'}"
    )


def _simulate_secure(
    task: str,
    peers: int,
    rounds: int,
    seed: int,
    out: Path | None,
    clip_norm: float,
    dropouts: int,
    *,
    mixed: object,
) -> None:
    """``simulate --secure-aggregation`` (``fedchain.simulator.secure``)."""
    from fedchain.simulator.secure import simulate_secure

    if mixed:
        raise ConfigError(
            "--secure-aggregation runs alone: drop --attack, --encoding and "
            "--dp-epsilon (attacks and encodings need plain updates)"
        )
    if not clip_norm > 0:
        raise typer.BadParameter(f"must be > 0, got {clip_norm}", param_hint="--clip-norm")
    result = simulate_secure(
        task, peers, rounds, seed, clip_norm=clip_norm, dropouts=dropouts, out=out
    )
    typer.echo(
        f"{rounds} securely aggregated rounds in {result.record['wall_seconds']:.1f} s; "
        f"record written to {result.out_dir / 'record.json'}"
    )


def _key_values(items: list[str], option: str) -> dict[str, object]:
    """``key=value`` options as a dict; each value read as TOML (``2``, ``0.5``, ``true``,
    ``"text"``), or as a plain string when it is not a TOML value."""
    import tomllib

    from fedchain.errors import ConfigError

    out: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} {item!r} is not key=value")
        try:
            out[key.strip()] = tomllib.loads(f"v = {value.strip()}")["v"]
        except tomllib.TOMLDecodeError:
            out[key.strip()] = value.strip()
    return out


@app.command("replay")
def replay_cmd(
    rpc_url: Annotated[str, typer.Option(help="The chain's JSON-RPC URL.")],
    contract: Annotated[str, typer.Option(help="The Federation contract's address.")],
    task: Annotated[int, typer.Option(min=1, help="Task id.")] = 1,
    ipfs_api: Annotated[str, typer.Option(help="A Kubo RPC multiaddr holding the content.")] = (
        "/ip4/127.0.0.1/tcp/5001"
    ),
    timeout: Annotated[float, typer.Option(min=1.0, help="Seconds per content fetch.")] = 60.0,
    audit_key: Annotated[
        Path | None,
        typer.Option(
            help="X25519 keystore (the federation's audit key, or a member's) that opens a "
            "members-only task's content; its password from FEDCHAIN_KEY_PASSWORD."
        ),
    ] = None,
) -> None:
    """Re-derive every finalized round of a task from the chain and IPFS, as an auditor.

    Exits 1 when any round's recomputed aggregate or scores root differs from what it
    finalized with. Sends no transaction and writes nothing.
    """
    from eth_account import Account
    from rich.console import Console
    from rich.table import Table

    from fedchain.replay import Replayer
    from peer.content.kubo import KuboContentStore
    from peer.ledger.client import FederationClient, connect

    secret = None
    if audit_key is not None:
        from fedchain.ops.encryption_key import load_encryption_key
        from peer.keystore import resolve_password

        password = resolve_password("FEDCHAIN_KEY_PASSWORD", None)
        secret = load_encryption_key(audit_key, password).secret
    client = FederationClient(connect(rpc_url), contract, Account.create())
    table = Table(title=f"task {task} at {contract}")
    for col in ("round", "agreed aggregate", "recomputed", "scores", "left out", "no credit"):
        table.add_column(col)
    with KuboContentStore(ipfs_api) as store:
        rounds = Replayer(client, store, task, timeout=timeout, audit_secret=secret).replay_all()
    for r in rounds:
        table.add_row(
            str(r.round),
            r.agreed_cid,
            "same" if r.recomputed_cid == r.agreed_cid else str(r.recomputed_cid),
            "match" if r.scores_match else "DIFFER",
            str(len(r.left_out)),
            str(len(r.no_credit)),
        )
    Console().print(table)
    bad = [r.round for r in rounds if not r.ok]
    for r in rounds:
        if not r.ok:
            typer.echo(f"round {r.round}: {r.why()}", err=True)
    if bad:
        typer.echo(f"rounds that do not replay: {bad}", err=True)
        raise typer.Exit(1)
    typer.echo(f"{len(rounds)} finalized rounds replay to their agreed aggregates and scores")


@app.command("audit")
def audit(
    fast: Annotated[bool, typer.Option(help="Fewer fuzz and invariant runs.")] = False,
    report: Annotated[Path | None, typer.Option(help="Default audit/report.md.")] = None,
) -> None:
    """Audit the contracts (compiler, Slither, forge fuzz/invariants, gas, access control)."""
    from fedchain.audit import run_audit

    raise typer.Exit(run_audit(fast=fast, report=report))


@app.command("build-contract")
def build_contract() -> None:
    """Compile contracts/ and write the artifact the package ships to peers (in a checkout)."""
    from fedchain.contract_build import write_shipped_artifact
    from peer.ledger.artifact import ARTIFACT_FILE

    artifact = write_shipped_artifact()
    typer.echo(f"wrote {ARTIFACT_FILE} ({artifact.name}, compiler {artifact.compiler})")


def main() -> None:
    """Run the CLI; the exit code is decided here, so interrupts always end with 130.

    Typer's standalone mode decides exit codes itself (an interrupt could end as
    "Aborted!", exit 1); it is off, and usage errors are shown here instead.
    """
    interrupt_on_signals()
    try:
        code = app(standalone_mode=False)
    except FedchainError as exc:
        if received_signal() is None:
            typer.echo(error_line(str(exc)), err=True)
            sys.exit(EXIT_ERROR)
        code = EXIT_INTERRUPTED
    except (KeyboardInterrupt, typer.Abort):
        code = EXIT_INTERRUPTED
    except typer.TyperException as exc:  # usage errors: what typer's standalone mode shows
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            typer.echo(f"fedchain: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    if received_signal() is not None or code == EXIT_INTERRUPTED:
        typer.echo("fedchain: interrupted; everything this command started was stopped", err=True)
        sys.exit(EXIT_INTERRUPTED)
    sys.exit(code if isinstance(code, int) else 0)
