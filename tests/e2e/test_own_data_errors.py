"""A peer pointed at bad own data stops before it writes anything, with one line saying why.

Real chain, real Kubo, the real ``fedchain peer run``: the federation runs an ``ehr-csv`` task
(a CSV schema in the spec) and an ``imaging`` task (a folder of PNGs); one member's config is
pointed at broken files. Each run must exit non-zero with a single error line naming the file
(and the row or field) and what to do, and leave no transaction from that member on the chain
and nothing new pinned on its Kubo.
"""

from __future__ import annotations

import json
import tomllib
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from PIL import Image

from fedchain.consortium import TaskTerms, publish_task
from fedchain.localnet.devnet import LocalFederation, TaskParams
from models.tasks import get_task, initial_weights
from peer.content.kubo import KuboContentStore
from peer.ledger.client import FederationClient
from tests.e2e.test_peer_cli_errors import assert_one_error_line, run_peer

pytestmark = pytest.mark.e2e

SCHEMA = {
    "features": [
        {"name": "age", "type": "float"},
        {"name": "sex", "type": "category", "values": [0, 1]},
    ],
    "label": {"name": "target", "classes": 2},
}


@dataclass
class OwnDataFederation:
    fed: LocalFederation
    imaging_task: int


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OwnDataFederation]:
    ehr = get_task("ehr-csv").default_spec(name="ehr-own-data", task_args=SCHEMA)
    fed = LocalFederation(tmp_path_factory.mktemp("own"), ["cleveland", "hungary"])
    fed.start(TaskParams(spec=ehr, rounds=1, quorum=2))
    assert fed.w3 is not None and fed.deployer is not None
    imaging = get_task("imaging").default_spec(name="imaging-own-data")
    first = fed.hospitals[0]
    creator = FederationClient(fed.w3, fed.deployer.address, first.identity.account)
    with KuboContentStore(first.kubo.api_multiaddr) as store:
        published = publish_task(
            creator, store, imaging, initial_weights(imaging), TaskTerms(rounds=1, quorum=2)
        )
    yield OwnDataFederation(fed, published.task_id)
    fed.close()


def _pins(fed: LocalFederation, name: str) -> set[str]:
    url = f"{fed.hospital(name).kubo.api_url}/pin/ls?type=recursive"
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as resp:
        return set(json.load(resp).get("Keys", {}))


def _run_with_data(
    own: OwnDataFederation, tmp_path: Path, data: dict[str, object], **chain: object
):
    fed = own.fed
    member = fed.hospitals[1]
    assert fed.w3 is not None
    nonce = fed.w3.eth.get_transaction_count(member.identity.address)
    pins = _pins(fed, member.name)
    changes: dict[str, object] = {"data": data}
    if chain:
        changes["chain"] = chain
    cfg = variant_of(fed, tmp_path, changes)
    code, lines = run_peer(cfg)
    assert fed.w3.eth.get_transaction_count(member.identity.address) == nonce, "a tx was sent"
    assert _pins(fed, member.name) == pins, "something was pinned"
    return code, lines


def variant_of(fed: LocalFederation, tmp_path: Path, changes: dict[str, object]) -> Path:
    """The second hospital's config with ``[data]`` replaced and ``[chain]`` keys updated."""
    member = fed.hospitals[1]
    cfg = tomllib.loads(member.config_path.read_text())
    cfg["data"] = changes["data"]
    cfg["chain"].update(changes.get("chain", {}))  # type: ignore[call-overload]
    path = member.home / f"own-data-{tmp_path.name}.toml"
    path.write_text(tomli_w.dumps(cfg))
    return path


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "ehr.csv"
    path.write_text(text)
    return path


def _rows(n: int = 40, *, label: object = None) -> str:
    lines = ["age,sex,target"]
    for i in range(n):
        lines.append(f"{30 + i},{i % 2},{label if label is not None and i == 7 else i % 2}")
    return "\n".join(lines) + "\n"


def test_csv_missing_a_column(own: OwnDataFederation, tmp_path: Path) -> None:
    path = _csv(tmp_path, "age,target\n" + "".join(f"{30 + i},{i % 2}\n" for i in range(40)))
    code, lines = _run_with_data(own, tmp_path, {"path": str(path)})
    assert_one_error_line(code, lines, str(path), "'sex'")


def test_csv_with_a_wrong_dtype(own: OwnDataFederation, tmp_path: Path) -> None:
    text = _rows().replace("\n37,", "\nabc,", 1)
    path = _csv(tmp_path, text)
    code, lines = _run_with_data(own, tmp_path, {"path": str(path)})
    assert_one_error_line(code, lines, str(path), "'age'", "'abc'")


def test_csv_with_a_label_out_of_range(own: OwnDataFederation, tmp_path: Path) -> None:
    path = _csv(tmp_path, _rows(label=5))
    code, lines = _run_with_data(own, tmp_path, {"path": str(path)})
    assert_one_error_line(code, lines, str(path), "5")


def test_empty_csv(own: OwnDataFederation, tmp_path: Path) -> None:
    path = _csv(tmp_path, "")
    code, lines = _run_with_data(own, tmp_path, {"path": str(path)})
    assert_one_error_line(code, lines, str(path))


def test_png_folder_with_an_unlabelled_image(own: OwnDataFederation, tmp_path: Path) -> None:
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["file,label"]
    for i in range(30):
        image = (rng.random((28, 28)) * 255).astype(np.uint8)
        Image.fromarray(image, mode="L").save(folder / f"scan{i:02d}.png")
        if i != 11:
            rows.append(f"scan{i:02d}.png,{i % 2}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    code, lines = _run_with_data(own, tmp_path, {"path": str(folder)}, task_id=own.imaging_task)
    assert_one_error_line(code, lines, str(folder), "scan11.png", "labels.csv")
