"""The commented peer config ``fedchain init`` writes.

Written as text, not dumped from a dict, so that every setting carries the comment an IT
department needs to fill it in; values go through ``tomli_w`` so they are always valid TOML.
The result must load with :func:`peer.config.load_config` (the tests check it).
"""

from __future__ import annotations

from dataclasses import dataclass

import tomli_w

PLACEHOLDER_CONTRACT = "0x0000000000000000000000000000000000000000"
"""Written until the consortium has deployed; ``fedchain status`` says to replace it."""


@dataclass(frozen=True)
class PeerSettings:
    """What ``fedchain init`` knows (or assumes) about the institution's set-up."""

    institution: str
    rpc_url: str = "http://127.0.0.1:8545"
    contract: str = PLACEHOLDER_CONTRACT
    task_id: int = 1
    ipfs_api: str = "/ip4/127.0.0.1/tcp/5001"
    gossip_host: str = "0.0.0.0"
    gossip_port: int = 4101
    data_path: str | None = "data/records.csv"
    partition: str | None = None
    password_env: str = "FEDCHAIN_KEY_PASSWORD"
    swarm_peers: tuple[str, ...] = ()
    bootstrap: tuple[str, ...] = ()


def toml_value(value: object) -> str:
    """``value`` as a TOML value (a list on several lines)."""
    return tomli_w.dumps({"v": value}).split("=", 1)[1].strip()


def _data_section(s: PeerSettings) -> str:
    if s.partition is not None:
        return (
            "# A built-in partition of the task's packaged data (demos and trials).\n"
            f"partition = {toml_value(s.partition)}\n"
        )
    return (
        "# This institution's own records (relative to this file's folder): a CSV, an .npz or\n"
        "# a folder of PNGs with labels.csv, in the format the task spec names. They never\n"
        "# leave this machine.\n"
        f"path = {toml_value(s.data_path)}\n"
        "# test_fraction = 0.2   # the local test split\n"
    )


def render_peer_config(s: PeerSettings, *, keys_dir: str = "keys") -> str:
    """The config text; relative paths are resolved against the config file's folder."""
    return f"""\
# fedchain peer config for {s.institution}, written by `fedchain init`.
# Relative paths are resolved against this file's folder. Check it with
# `fedchain status --config <this file>`.

# This peer's own records (history.jsonl), kept readable by the owner only.
state_dir = "state"

[institution]
name = {toml_value(s.institution)}

[keys]
# Encrypted at rest (scrypt). Back up the whole keys folder; a lost key cannot be recovered.
eth_keystore = {toml_value(f"{keys_dir}/eth.json")}
libp2p_keystore = {toml_value(f"{keys_dir}/libp2p.json")}
# The X25519 key that opens members-only tasks' updates and aggregates:
encryption_keystore = {toml_value(f"{keys_dir}/x25519.json")}
# The password comes from this environment variable, or from a file:
password_env = {toml_value(s.password_env)}
# password_file = "/etc/fedchain/password"

[chain]
# The consortium's Ethereum JSON-RPC endpoint.
rpc_url = {toml_value(s.rpc_url)}
# The Federation contract's address, sent by the consortium once it has deployed.
# `fedchain use-task --config <this file> --contract 0x… --task-id N` sets both lines.
contract = {toml_value(s.contract)}
# The task this peer trains (printed by `fedchain create-task`).
task_id = {toml_value(s.task_id)}

[ipfs]
# This institution's own Kubo RPC API (never expose it beyond this machine).
api = {toml_value(s.ipfs_api)}
# The other institutions' Kubo swarm multiaddrs (/ip4/.../tcp/4001/p2p/...).
swarm_peers = {toml_value(list(s.swarm_peers))}

[gossip]
# libp2p gossip (Noise only); open this TCP port to the other institutions.
enabled = true
listen_host = {toml_value(s.gossip_host)}
listen_port = {toml_value(s.gossip_port)}
# Other peers' /ip4/<host>/tcp/<port>/p2p/<peer id> addresses.
bootstrap = {toml_value(list(s.bootstrap))}

[baseline]
# Once the task completes, train the model on this institution's data alone (as many epochs as
# the task's rounds) and record its test metrics beside the federated model's, for the
# dashboard and `fedchain report <state_dir>`: one more local training of the task's length.
local_only = true

[data]
{_data_section(s)}"""
