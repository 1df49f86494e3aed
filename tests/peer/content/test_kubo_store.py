"""KuboContentStore against real Kubo daemons: what only Kubo has (CLI, daemon, HTTP API).

The backend-neutral suite runs over Kubo and the memory twin in ``test_conformance.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedchain.errors import ConfigError, ContentError, ServiceUnavailableError
from fedchain.localnet.kubo_daemon import generate_swarm_key
from fedchain.localnet.procs import free_port
from peer.content.cid import CODEC_DAG_PB, cid_from_digest, cid_to_bytes
from peer.content.kubo import KuboContentStore
from peer.content.unixfs import dag_pb_node, file_cid, unixfs_file_data
from tests.peer.content.conformance import MiB
from tests.peer.content.kubo_harness import REPO_ROOT, KuboPeer, cli, start_peer

# ipfshttpclient 0.7 passes urllib3 2.x an obsolete argument on every request.
pytestmark = pytest.mark.filterwarnings("ignore:The 'strict' parameter:FutureWarning")

# bytes(i % 251 for i in range(3 MiB)) as imported by `ipfs add --cid-version 1
# --raw-leaves --chunker size-1048576` (Kubo 0.41, profile unixfs-v1-2025).
PATTERN_3MIB_CID = "bafybeihzpjrbcpjpzcx4yxh3hasnjidsikmwmsrli7hhamhny5iueulu5a"


def test_cid_matches_the_kubo_cli_import_of_the_same_bytes(kubo_a: KuboPeer):
    data = bytes(i % 251 for i in range(3 * MiB))
    assert kubo_a.store.add(data) == PATTERN_3MIB_CID


def test_unreachable_api_names_the_address_and_the_fix():
    address = f"/ip4/127.0.0.1/tcp/{free_port()}/http"
    with pytest.raises(ServiceUnavailableError) as caught:
        KuboContentStore(address)
    message = str(caught.value)
    assert address in message
    assert "start the Kubo daemon" in message and "ipfs.api" in message


def test_malformed_api_address_is_a_config_error():
    with pytest.raises(ConfigError, match=r"ipfs\.api"):
        KuboContentStore("localhost:5001")


def test_peer_outside_the_private_network_can_neither_connect_nor_fetch(
    ipfs_bin: Path, kubo_a: KuboPeer, tmp_path: Path
):
    data = os.urandom(10_000)
    cid = kubo_a.store.add(data)
    outsider = start_peer(ipfs_bin, tmp_path / "outsider", generate_swarm_key())
    try:
        with pytest.raises(ServiceUnavailableError, match="swarm key"):
            outsider.store.connect(kubo_a.address)
        with pytest.raises(ContentError, match=cid):
            outsider.store.get(cid, timeout=2)
        assert outsider.store.has_local(cid) is False
    finally:
        outsider.close()
    # A itself never accepted the outsider.
    peers = cli(ipfs_bin, kubo_a.daemon, "swarm", "peers")
    assert outsider.daemon.peer_id not in peers


def test_content_that_stops_arriving_midway_is_an_error_not_short_bytes(
    ipfs_bin: Path, swarm_key: bytes, tmp_path: Path
):
    source = start_peer(ipfs_bin, tmp_path / "source", swarm_key)
    sink = start_peer(ipfs_bin, tmp_path / "sink", swarm_key)
    try:
        data = os.urandom(3 * MiB)
        cid = source.store.add(data)
        sink.store.connect(source.address)
        # Fetch only the root block, then lose the only peer holding the rest.
        cli(ipfs_bin, sink.daemon, "block", "stat", cid)
        source.close()
        assert sink.store.has_local(cid) is False
        with pytest.raises(ContentError, match=f"{cid}.*of {3 * MiB} bytes"):
            sink.store.get(cid, timeout=1.5)
    finally:
        sink.close()
        source.close()


def test_restarted_daemon_keeps_identity_and_pinned_content(
    ipfs_bin: Path, swarm_key: bytes, tmp_path: Path
):
    first = start_peer(ipfs_bin, tmp_path / "node", swarm_key)
    data = os.urandom(2 * MiB)
    cid = first.store.add(data)
    peer_id = first.store.peer_id
    first.close()

    second = start_peer(ipfs_bin, tmp_path / "node", swarm_key)  # init() again, new ports
    try:
        assert second.store.peer_id == peer_id
        assert second.store.has_local(cid)
        assert second.store.get(cid, timeout=5) == data
    finally:
        second.close()


def test_daemon_that_goes_away_is_reported_as_unavailable(
    ipfs_bin: Path, swarm_key: bytes, tmp_path: Path
):
    peer = start_peer(ipfs_bin, tmp_path / "gone", swarm_key)
    cid = peer.store.add(b"soon unreachable")
    peer.daemon.stop()
    try:
        with pytest.raises(ServiceUnavailableError, match=peer.daemon.api_multiaddr):
            peer.store.get(cid, timeout=2)
    finally:
        peer.close()


# -- size limits and hostile content ---------------------------------------------

PROBE_OBJECT_BYTES = 64 * MiB


def test_refusing_an_oversize_object_does_not_load_it_into_memory(
    kubo_a: KuboPeer, kubo_b: KuboPeer
):
    cid = kubo_a.store.add(os.urandom(PROBE_OBJECT_BYTES))
    kubo_b.store.connect(kubo_a.address)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.peer.content.fetch_probe",
            kubo_b.daemon.api_multiaddr,
            cid,
            str(MiB),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["limited"].startswith("ContentTooLarge") and cid in report["limited"]
    assert report["unlimited_bytes"] == PROBE_OBJECT_BYTES
    refused_growth = report["after_refusal"] - report["before"]
    download_growth = report["after_download"] - report["after_refusal"]
    # The control shows the probe sees a download; the refusal stays far below it.
    assert download_growth >= PROBE_OBJECT_BYTES // 2, report
    assert refused_growth < PROBE_OBJECT_BYTES // 8, report


def _lying_root(leaves: list[bytes], lie: str) -> bytes:
    """A dag-pb UnixFS root over real raw leaves whose metadata misstates the content."""
    links = [(cid_to_bytes(file_cid(leaf)), len(leaf)) for leaf in leaves]
    sizes = [len(leaf) for leaf in leaves]
    total = sum(sizes)
    if lie == "understated-size":
        return dag_pb_node(links, unixfs_file_data(total - MiB, sizes))
    if lie == "overstated-size":
        return dag_pb_node(links, unixfs_file_data(total + MiB, sizes))
    if lie == "wrong-blocksizes":
        return dag_pb_node(links, unixfs_file_data(total, [*sizes[:-1], sizes[-1] + 1]))
    raise AssertionError(lie)


@pytest.mark.parametrize(
    ("lie", "refusal"),
    [
        ("understated-size", "delivers more than the 2097152 bytes its root announces"),
        ("overstated-size", "only 3145728 of 4194304 bytes arrived"),
        ("wrong-blocksizes", "hashes to b"),
    ],
)
def test_content_under_a_lying_root_is_never_returned(
    ipfs_bin: Path, kubo_a: KuboPeer, kubo_b: KuboPeer, tmp_path: Path, lie: str, refusal: str
):
    data = os.urandom(3 * MiB)
    kubo_a.store.add(data)  # A holds the genuine leaves
    root = _lying_root([data[i : i + MiB] for i in range(0, len(data), MiB)], lie)
    block = tmp_path / "root.bin"
    block.write_bytes(root)
    crafted = cli(ipfs_bin, kubo_a.daemon, "block", "put", "--cid-codec", "dag-pb", str(block))
    crafted = crafted.strip()
    assert crafted == cid_from_digest(hashlib.sha256(root).digest(), CODEC_DAG_PB)
    kubo_b.store.connect(kubo_a.address)
    for store in (kubo_a.store, kubo_b.store):  # holding every block locally changes nothing
        with pytest.raises(ContentError, match=crafted) as caught:
            store.get(crafted, timeout=10, max_bytes=8 * MiB)
        assert refusal in str(caught.value)


def test_a_cid_naming_a_directory_is_refused(ipfs_bin: Path, kubo_a: KuboPeer, tmp_path: Path):
    block = tmp_path / "dir.bin"
    block.write_bytes(dag_pb_node([], bytes([0x08, 0x01])))  # UnixFS Data{Type: Directory}
    cid = cli(ipfs_bin, kubo_a.daemon, "block", "put", "--cid-codec", "dag-pb", str(block))
    with pytest.raises(ContentError, match=f"{cid.strip()} is a UnixFS directory, not a file"):
        kubo_a.store.get(cid.strip(), timeout=10)
