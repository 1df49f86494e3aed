"""A short heart federation through the simulator learns about as well with int8 and top-k
updates as with plain ones (FedAvg, so that no selection step amplifies small differences)."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from consensus.task_spec import AggregationSpec, EncodingSpec
from fedchain.simulator.run import SimulationResult, simulate
from peer.records import History

ROUNDS = 4


def _run(tmp_path: Path, name: str, encoding: EncodingSpec | None) -> SimulationResult:
    return simulate(
        "heart",
        4,
        ROUNDS,
        seed=0,
        out=tmp_path / name,
        local_only=False,
        console=Console(quiet=True),
        aggregation=AggregationSpec(rule="fedavg"),
        encoding=encoding,
    )


def _final(result: SimulationResult) -> float:
    value = result.record["rounds"][-1]["metrics"]["mean_primary"]
    assert isinstance(value, float)
    return value


def test_int8_and_topk_federations_finalize_close_to_the_plain_one(tmp_path: Path) -> None:
    plain = _run(tmp_path, "plain", None)
    int8 = _run(tmp_path, "int8", EncodingSpec(codec="int8"))
    topk = _run(tmp_path, "topk", EncodingSpec(codec="topk", params={"fraction": 0.3}))
    for result in (plain, int8, topk):
        assert len(result.aggregate_cids) == ROUNDS
        assert all(not r["left_out"] for r in result.record["rounds"])
    assert abs(_final(int8) - _final(plain)) <= 0.01
    assert abs(_final(topk) - _final(plain)) <= 0.05
    assert int8.record["task_spec"]["encoding"] == {
        "codec": "int8",
        "params": {},
        "compress": "none",
    }
    entry = next(iter(History(tmp_path / "topk" / "peers" / "cleveland").entries()))
    assert entry["update_bytes"] > 0


def _one_int8_round_with(attack: str, out: Path) -> SimulationResult:
    """Heart, 4 institutions, one round of int8 updates, one member playing ``attack``."""
    return simulate(
        "heart",
        4,
        1,
        seed=0,
        out=out,
        local_only=False,
        console=Console(quiet=True),
        encoding=EncodingSpec(codec="int8"),
        attack=attack,
        byzantine=1,
    )


def test_an_attack_reading_honest_updates_decodes_them(tmp_path: Path) -> None:
    result = _one_int8_round_with("collude", tmp_path / "collude")
    assert len(result.aggregate_cids) == 1
    assert result.record["byzantine"]["sees_honest_updates"] is True
    # the colluder read and decoded the honest updates, crafted its own, and submitted it
    assert len(result.record["rounds"][0]["participants"]) == 4


def test_cli_simulate_with_an_encoding(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from fedchain.cli import app

    out = tmp_path / "run"
    args = ["simulate", "--peers", "2", "--rounds", "1", "--no-local-only", "--out", str(out)]
    encoding = ["--encoding", "topk", "--encoding-param", "fraction=0.25"]
    result = CliRunner().invoke(app, [*args, *encoding])
    assert result.exit_code == 0, result.output
    spec = json.loads((out / "record.json").read_text())["task_spec"]
    assert spec["encoding"] == {"codec": "topk", "params": {"fraction": 0.25}, "compress": "none"}
    bad = CliRunner().invoke(app, [*args, "--encoding", "zip"])
    assert bad.exit_code != 0
    assert "registered codecs: fp16, int8, none, topk" in str(bad.exception) + bad.output


def test_a_free_rider_sending_a_zero_change_is_left_out(tmp_path: Path) -> None:
    """With encodings the chain-only digest rule cannot see the global model sent back; the
    decoded zero change can."""
    result = _one_int8_round_with("free-ride", tmp_path / "free-ride")
    (member,) = result.record["byzantine"]["addresses"].values()
    assert result.record["rounds"][0]["left_out"] == {
        member: "free rider: the encoded change is zero everywhere (the global model unchanged)"
    }
