"""Run in a fresh process: peak memory of refusing an oversize CID, then of fetching it.

Usage: python -m tests.peer.content.fetch_probe API_MULTIADDR CID MAX_BYTES
Prints one JSON object: the outcome of each fetch and VmHWM (peak resident
memory, bytes) before, after the refused fetch, and after the unlimited one.
The unlimited fetch is the control: it shows the probe sees a download.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fedchain.errors import ContentTooLarge
from peer.content.kubo import KuboContentStore

TIMEOUT = 60.0


def peak_rss() -> int:
    """This process's peak resident set size so far (VmHWM), in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main(api: str, cid: str, max_bytes: int) -> dict[str, object]:
    with KuboContentStore(api) as store:
        report: dict[str, object] = {"before": peak_rss()}
        try:
            store.get(cid, timeout=TIMEOUT, max_bytes=max_bytes)
            report["limited"] = "returned"
        except ContentTooLarge as exc:
            report["limited"] = f"ContentTooLarge: {exc}"
        report["after_refusal"] = peak_rss()
        report["unlimited_bytes"] = len(store.get(cid, timeout=TIMEOUT))
        report["after_download"] = peak_rss()
    return report


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
