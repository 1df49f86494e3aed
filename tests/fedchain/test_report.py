"""``fedchain report``: a self-contained HTML report of a real ``fedchain simulate`` run, of one
peer's records, and a clear error for a folder that is not a run."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from fedchain.cli import app
from fedchain.errors import ConfigError
from fedchain.ops.report import write_report
from fedchain.simulator.run import simulate
from peer.baseline import LOCAL_ONLY_FILE
from peer.records import History

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report") / "sim"
    simulate("heart", 3, 3, seed=0, out=out, console=Console(quiet=True))
    return out


def _images(text: str) -> list[bytes]:
    return [base64.b64decode(d) for d in re.findall(r'src="data:image/png;base64,([^"]+)"', text)]


def _cells(text: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    return [[html.unescape(c) for c in re.findall(r"<t[dh]>(.*?)</t[dh]>", r)] for r in rows]


def test_report_of_a_simulate_run_holds_its_records(run: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(run)])
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path == run / "report.html"
    text = path.read_text()
    record = json.loads((run / "record.json").read_text())

    # Self-contained: every plot is an embedded PNG, nothing is fetched from elsewhere.
    images = _images(text)
    assert len(images) >= 4 and all(img.startswith(PNG_MAGIC) for img in images)
    assert not re.search(r'(src|href)="(?!data:)', text)

    # The per-round table is the record's rounds: metric, participants, aggregate CID.
    cells = _cells(text)
    for r in record["rounds"]:
        row = [
            str(r["round"]),
            str(len(r["participants"])),
            f"{r['metrics']['mean_primary']:.4f}",
            f"{r['seconds']:.2f}",
            r["aggregate_cid"],
        ]
        assert row in cells, row

    # Per institution: federated and local-only on the own test split, and the chain's credit.
    for name, m in record["institutions"].items():
        row = [
            name,
            str(m["train_samples"]),
            f"{m['federated_own_test']:.4f}",
            f"{m['local_only_own_test']:.4f}",
            "–",
            str(m["credit"]),
        ]
        assert row in cells, row

    # Round time by step, from each institution's history: round 1's mean training time.
    trains = [
        e["seconds"]["train"]
        for name in record["institutions"]
        for e in History(run / "peers" / name).entries()
        if e["round"] == 1
    ]
    round_1 = next(c for c in cells if c and c[0] == "1" and len(c) == 14)  # 11 steps
    assert round_1[2] == f"{sum(trains) / len(trains):.3f}"

    # Every uncredited update, named by institution (the record ties addresses to names).
    names = {
        p["address"]: name
        for name in record["institutions"]
        for e in History(run / "peers" / name).entries()
        for r in record["rounds"]
        for p in r["participants"]
        if p["update_cid"] == e["update_cid"]
    }
    assert len(names) == 3
    for name in record["institutions"]:
        for e in History(run / "peers" / name).entries():
            for member, why in (e.get("no_credit") or {}).items():
                assert [str(e["round"]), names[member], "no credit", why] in cells

    # Absent data is said, not hidden.
    assert "No ε in this run's records" in html.unescape(text)
    assert "No pooled (centrally trained) baseline" in html.unescape(text)


def test_report_of_one_peers_records(run: Path, tmp_path: Path) -> None:
    out = write_report(run / "peers" / "hungary", tmp_path / "hungary.html")
    text = out.read_text()
    entries = list(History(run / "peers" / "hungary").entries())
    cells = _cells(text)
    for e in entries:
        assert ["hungary", str(e["round"]), f"{e['local_test']['auroc']:.4f}"] in cells
    assert len(_images(text)) >= 2
    assert "No local-only baselines in this run's records." in html.unescape(text)


def test_a_peers_local_only_baseline_sits_beside_its_last_agreed_model(
    run: Path, tmp_path: Path
) -> None:
    state = tmp_path / "hungary" / "state"
    shutil.copytree(run / "peers" / "hungary", state)
    baseline = {"rounds": 3, "epochs": 15, "metrics": {"auroc": 0.8123, "accuracy": 0.7}}
    (state / LOCAL_ONLY_FILE).write_text(json.dumps(baseline))
    text = html.unescape(write_report(state, tmp_path / "r.html").read_text())
    last = list(History(state).entries())[-1]["local_test"]["auroc"]
    assert ["hungary", "–", f"{last:.4f}", "0.8123", "–", "–"] in _cells(text)
    assert "No local-only baselines" not in text

    (state / LOCAL_ONLY_FILE).write_text('{"metrics": {"auroc": "high"}}')
    with pytest.raises(ConfigError, match=r"local_only\.json has no 'metrics' of numbers"):
        write_report(state, tmp_path / "r2.html")
    assert not (tmp_path / "r2.html").exists()


def test_a_folder_that_is_not_a_run_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a run")
    with pytest.raises(ConfigError, match=r"is not a fedchain run: it has no record\.json"):
        write_report(tmp_path)
    (tmp_path / "record.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"record\.json is not a readable run record"):
        write_report(tmp_path)
    assert not (tmp_path / "report.html").exists()
