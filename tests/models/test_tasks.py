"""The built-in tasks: load a partition, train one round, bit-identical in and across processes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from consensus.serialization import weights_to_bytes
from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from models.datasets import breast as breast_data
from models.tasks import (
    Learner,
    LocalData,
    get_task,
    initial_weights,
    reference_weights,
    round_seed,
)

ROOT = Path(__file__).resolve().parents[2]
HAS_BREAST = (breast_data.repo_root() / breast_data.SHARED_RELATIVE).is_file()

# (task, partition, primary metric); hapt is the slow one (reading the windows, ~5 s).
CASES = [
    ("heart", "cleveland", "auroc"),
    ("hapt", "subjects-2", "macro_f1"),
    pytest.param(
        "breast",
        "site-1",
        "auroc",
        marks=pytest.mark.skipif(not HAS_BREAST, reason="BreastMNIST not present"),
    ),
]

DIGEST_SCRIPT = """
import hashlib, json, sys
from consensus.serialization import weights_to_bytes
from models.tasks import Learner, LocalData, get_task, use_deterministic_torch
use_deterministic_torch()
out = {}
for name, part in json.loads(sys.argv[1]):
    task = get_task(name)
    learner = Learner.from_local(task, task.default_spec(), LocalData(partition=part), part)
    weights = learner.train(learner.initial_weights(), 3)
    out[name] = hashlib.sha256(weights_to_bytes(weights)).hexdigest()
print(json.dumps(out))
"""


def _learner(name: str, partition: str) -> Learner:
    task = get_task(name)
    return Learner.from_local(task, task.default_spec(), LocalData(partition=partition), partition)


def _digest(weights: dict[str, torch.Tensor]) -> str:
    return hashlib.sha256(weights_to_bytes(weights)).hexdigest()


@pytest.fixture(scope="module")
def learners() -> dict[str, Learner]:
    pairs = [("heart", "cleveland"), ("hapt", "subjects-2")]
    if HAS_BREAST:
        pairs.append(("breast", "site-1"))
    return {name: _learner(name, partition) for name, partition in pairs}


@pytest.mark.parametrize(("name", "partition", "metric"), CASES)
def test_loads_trains_one_round_and_evaluates(learners, name, partition, metric):
    learner = learners[name]
    task = learner.task
    assert task.primary_metric == metric == task.primary_metric_for(learner.spec)
    assert partition in task.builtin_institutions(learner.spec)
    assert learner.num_samples == learner.data.train.size >= 10
    start = learner.initial_weights()
    reference = learner.reference_weights()
    assert {k: (v.shape, v.dtype) for k, v in start.items()} == {
        k: (v.shape, v.dtype) for k, v in reference.items()
    }
    trained = learner.train(start, round_no=1)
    assert all(v.dtype == torch.float32 and v.is_contiguous() for v in trained.values())
    assert any(not torch.equal(trained[k], start[k]) for k in start)
    metrics = learner.evaluate(trained)
    assert 0.0 <= metrics[metric] <= 1.0


@pytest.mark.parametrize(("name", "partition", "metric"), CASES)
def test_same_round_twice_is_bit_identical_and_rounds_differ(learners, name, partition, metric):
    learner = learners[name]
    start = learner.initial_weights()
    torch.manual_seed(99)
    expected = torch.rand(2)
    torch.manual_seed(99)
    first = _digest(learner.train(start, round_no=3))
    assert torch.equal(torch.rand(2), expected)  # the caller's RNG is untouched
    assert _digest(learner.train(start, round_no=3)) == first
    if name == "heart":
        assert _digest(learner.train(start, round_no=4)) != first


def test_training_is_bit_identical_across_processes(learners):
    pairs = [(name, learners[name].institution) for name in learners]
    done = subprocess.run(
        [sys.executable, "-c", DIGEST_SCRIPT, json.dumps(pairs)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    local = {
        name: _digest(learners[name].train(learners[name].initial_weights(), 3))
        for name in learners
    }
    assert remote == local


def test_round_seed_is_a_pure_function_of_seed_round_and_institution():
    assert round_seed(0, 1, "a") == round_seed(0, 1, "a")
    seeds = {round_seed(s, r, i) for s in (0, 1) for r in (1, 2) for i in ("a", "b")}
    assert len(seeds) == 8 and all(0 <= s < 2**63 for s in seeds)
    digest = hashlib.sha256(b"fedchain/train-seed/v1\x007\x002\x00va").digest()
    assert round_seed(7, 2, "va") == int.from_bytes(digest[:8], "big") >> 1


def test_initial_weights_come_from_the_spec_seed_only():
    task = get_task("heart")
    a, b = task.default_spec(), task.default_spec(training={"seed": 5})
    torch.manual_seed(1)
    expected = torch.rand(2)
    torch.manual_seed(1)
    first = initial_weights(a)
    assert torch.equal(torch.rand(2), expected)
    assert _digest(initial_weights(a)) == _digest(first) != _digest(initial_weights(b))
    assert set(reference_weights(a)) == set(first)


def test_default_specs_round_trip_and_name_their_task():
    for name in ("heart", "hapt", "breast"):
        task = get_task(name)
        spec = task.default_spec()
        assert spec.task == name and spec.model.kwargs
        assert TaskSpec.from_bytes(spec.to_bytes()) == spec
        assert spec.to_bytes() == task.default_spec().to_bytes()  # canonical
    heart = get_task("heart").default_spec()
    assert heart.model.kwargs == {"in_features": 13}
    assert heart.training.optimizer == "adam"
    three = get_task("hapt").default_spec(task_args={"n_institutions": 3})
    assert get_task("hapt").builtin_institutions(three) == [
        "subjects-1",
        "subjects-2",
        "subjects-3",
    ]
    assert get_task("breast").builtin_institutions(get_task("breast").default_spec()) == [
        "site-1",
        "site-2",
        "site-3",
    ]


def test_hapt_institution_without_gyroscope(learners):
    task = get_task("hapt")
    spec = task.default_spec()
    local = LocalData(partition="subjects-2", modalities=("acc",))
    learner = Learner.from_local(task, spec, local, "subjects-2")
    assert learner.data.modalities == ("acc",)
    assert isinstance(learner.data.train.x, dict) and set(learner.data.train.x) == {"acc"}
    assert set(learner.data.test.x) == {"acc"}
    start = learner.initial_weights()
    trained = learner.train(start, 1)
    gyro = [k for k in start if k.startswith("encoders.gyro.")]
    assert gyro and all(torch.equal(trained[k], start[k]) for k in gyro)
    full = learners["hapt"].data
    assert np.array_equal(full.train.y, learner.data.train.y)
    with pytest.raises(ConfigError, match="ecg"):
        task.load(spec, LocalData(partition="subjects-2", modalities=("ecg",)))


def test_wrong_partition_and_wrong_spec_are_refused():
    heart = get_task("heart")
    with pytest.raises(ConfigError, match="cleveland, hungary"):
        heart.load(heart.default_spec(), LocalData(partition="mayo"))
    with pytest.raises(ConfigError, match="not 'heart'"):
        heart.load(get_task("hapt").default_spec(), LocalData(partition="cleveland"))
    with pytest.raises(ConfigError, match=r"task_args\.features"):
        heart.default_spec(task_args={"features": []})
    with pytest.raises(ConfigError, match="subjects-1"):
        get_task("hapt").load(get_task("hapt").default_spec(), LocalData(partition="cleveland"))
    with pytest.raises(ConfigError, match="no built-in partitions"):
        ehr = get_task("ehr-csv")
        ehr.load(
            heart.default_spec().model_copy(update={"task": "ehr-csv"}), LocalData(partition="x")
        )
