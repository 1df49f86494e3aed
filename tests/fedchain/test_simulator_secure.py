"""``fedchain simulate --secure-aggregation``: masked rounds equal fixed-point FedAvg."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from consensus.secagg.fixed_point import FixedPoint
from consensus.secagg.rounds import fixed_point_fedavg
from consensus.secagg.state import apply_change, change_of
from fedchain.cli import app
from fedchain.errors import ConfigError
from fedchain.simulator.partitions import population
from fedchain.simulator.secure import simulate_secure
from models.tasks import get_task


def test_masked_rounds_with_dropouts_end_at_fixed_point_fedavg(tmp_path: Path) -> None:
    pop = population(get_task("heart"), 4, 0)
    result = simulate_secure(
        "heart",
        4,
        2,
        clip_norm=0.8,
        dropouts=1,
        out=tmp_path,
        console=Console(quiet=True),
        given_population=pop,
    )
    record = json.loads((tmp_path / "record.json").read_text())
    assert [len(r["submitted"]) for r in record["rounds"]] == [3, 3]
    assert record["rounds"][0]["dropped"] != record["rounds"][1]["dropped"]
    assert all(r["reveals"] == 3 for r in record["rounds"])  # 3 submitters x 1 missing member
    assert any(r["clipped"] for r in record["rounds"])  # the clip norm was active
    # the same rounds recomputed here in plain fixed point, without any mask
    fp = FixedPoint(clip_norm=0.8, fraction_bits=24)
    weights = next(iter(pop.learners.values())).initial_weights()
    for round_no, r in enumerate(record["rounds"], start=1):
        live = [pop.learners[n] for n in r["submitted"]]
        changes = [change_of(ln.train(weights, round_no), weights) for ln in live]
        mean = fixed_point_fedavg(fp, changes, [ln.num_samples for ln in live])
        weights = apply_change(weights, mean.mean_change)
    assert all(torch.equal(weights[k], result.final_weights[k]) for k in weights)


def test_bad_options_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"--dropouts must be in 0\.\.2"):
        simulate_secure("heart", 4, 1, clip_norm=1.0, dropouts=3, out=tmp_path)
    runner = CliRunner()
    mixed = runner.invoke(
        app, ["simulate", "--secure-aggregation", "--encoding", "int8", "--out", str(tmp_path)]
    )
    assert mixed.exit_code != 0
    assert "--secure-aggregation runs alone" in str(mixed.exception) + mixed.output
