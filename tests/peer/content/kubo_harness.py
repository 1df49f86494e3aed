"""Real Kubo daemons for tests: find the binary once, start daemons on free ports.

Tests that need Kubo skip only when ``scripts/install-kubo`` cannot produce a
binary (it finds, downloads or builds one, and caches it outside the clone).
"""

from __future__ import annotations

import functools
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedchain.localnet.kubo_daemon import KuboDaemon
from fedchain.localnet.procs import free_port
from peer.content.kubo import KuboContentStore

REPO_ROOT = Path(__file__).resolve().parents[3]
INSTALL_SCRIPT = REPO_ROOT / "scripts" / "install-kubo"
INSTALL_TIMEOUT = 1800.0  # a first build from source takes minutes on 2 cores


@functools.cache
def _locate_ipfs() -> tuple[Path | None, str]:
    """Run install-kubo once per test session; return (binary, reason if none)."""
    try:
        done = subprocess.run(
            [str(INSTALL_SCRIPT)],
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"scripts/install-kubo could not run: {exc}"
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(done.stderr.strip().splitlines()[-6:])
        return None, f"no Kubo binary: scripts/install-kubo exited {done.returncode}:\n{tail}"
    binary = Path(lines[-1])
    if not os.access(binary, os.X_OK):
        return None, f"scripts/install-kubo printed {binary}, which is not executable"
    return binary, ""


def ipfs_binary() -> Path:
    """The Kubo binary, or skip the calling test saying why there is none."""
    binary, reason = _locate_ipfs()
    if binary is None:
        pytest.skip(reason)
    return binary


def new_daemon(binary: Path, repo: Path, swarm_key: bytes | None) -> KuboDaemon:
    """An initialised (not yet started) daemon on fresh loopback ports."""
    daemon = KuboDaemon(
        binary, repo, api_port=free_port(), swarm_port=free_port(), swarm_key=swarm_key
    )
    daemon.init()
    return daemon


@dataclass
class KuboPeer:
    """A running daemon plus a content store talking to it."""

    daemon: KuboDaemon
    store: KuboContentStore

    @property
    def address(self) -> str:
        return self.daemon.swarm_multiaddr

    def take_down(self) -> None:
        """Stop the daemon; the store stays open (and now finds nobody to talk to)."""
        self.daemon.stop()

    def close(self) -> None:
        self.store.close()
        self.daemon.stop()


def start_peer(binary: Path, repo: Path, swarm_key: bytes | None) -> KuboPeer:
    daemon = new_daemon(binary, repo, swarm_key)
    daemon.start()
    try:
        return KuboPeer(daemon, KuboContentStore(daemon.api_multiaddr))
    except BaseException:
        daemon.stop()
        raise


def cli(binary: Path, daemon: KuboDaemon, *args: str) -> str:
    """Run the ipfs CLI against ``daemon`` (its repo, or its API when running)."""
    env = dict(os.environ, IPFS_PATH=str(daemon.repo), IPFS_TELEMETRY="off")
    done = subprocess.run(
        [str(binary), *args], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout
