"""``fedchain dashboard``: choose the sources, start the server, print the URL, serve until
interrupted."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, replace
from pathlib import Path

from fedchain.errors import ConfigError
from fedchain.interrupts import raise_if_interrupted
from fedchain.ops.dashboard.live import DashboardSources, LiveReader
from fedchain.ops.dashboard.server import DashboardServer, is_loopback, new_token


def sources_from_options(
    config: Path | None,
    rpc_url: str | None,
    contract: str | None,
    ipfs_api: str | None,
    records: Path | None,
) -> DashboardSources:
    """A peer's config, or (auditor) a chain RPC URL and contract; not both, not neither."""
    if config is not None:
        if rpc_url or contract:
            raise ConfigError(
                "give either --config (a peer's view) or --rpc-url/--contract (an auditor's), "
                "not both"
            )
        from peer.config import load_config

        sources = DashboardSources.of_peer(load_config(config))
        if ipfs_api is not None:
            sources = replace(sources, ipfs_api=ipfs_api)
        return sources
    if not rpc_url or not contract:
        raise ConfigError(
            "the dashboard needs --config PEER.toml, or --rpc-url URL and --contract ADDRESS "
            "(auditor mode; add --ipfs-api for what IPFS holds)"
        )
    return DashboardSources(rpc_url, contract, ipfs_api=ipfs_api, records=records)


@dataclass
class RunningDashboard:
    """A dashboard serving in a background thread: its server and the sources it reads."""

    server: DashboardServer
    reader: LiveReader

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        try:
            self.server.close()
        finally:
            self.reader.close()


def start_dashboard(
    sources: DashboardSources, *, host: str = "127.0.0.1", port: int = 8765
) -> RunningDashboard:
    """Start serving in a background thread; beyond loopback with a fresh token."""
    reader = LiveReader(sources)
    token = None if is_loopback(host) else new_token()
    try:
        server = DashboardServer(reader.snapshot, host=host, port=port, token=token)
    except BaseException:
        reader.close()
        raise
    return RunningDashboard(server, reader)


def run_dashboard(
    sources: DashboardSources, *, host: str, port: int, echo: Callable[[str], None] = print
) -> int:
    with closing(start_dashboard(sources, host=host, port=port)) as dashboard:
        echo(f"dashboard ({sources.mode} view) at {dashboard.url}")
        if dashboard.server.token:
            echo("the token in this URL is needed to open the page; share it only with viewers")
        echo("Ctrl-C stops it.")
        while True:
            raise_if_interrupted()
            time.sleep(0.5)
