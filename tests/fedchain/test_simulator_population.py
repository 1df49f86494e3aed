"""``simulate(..., given_population=...)``: the caller's spec and learners, the agreed model back.

What the learning bench relies on (it takes its federated column from the simulator): the
agreed model is FedAvg of the peers' local steps, it improves on the initial model, and an
institution without a modality leaves that modality's encoder as it was.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console

from consensus.aggregation import fedavg
from fedchain.errors import ConfigError
from fedchain.simulator.partitions import Population
from fedchain.simulator.run import simulate
from models.datasets.heart import HOSPITALS
from models.tasks import InstitutionData, Learner, LocalData, Samples, get_task
from models.tasks.learner import evaluate_weights, initial_weights


def _quiet() -> Console:
    return Console(quiet=True)


def _heart(training: dict[str, float | int]) -> Population:
    task = get_task("heart")
    spec = task.default_spec(training=training, aggregation="fedavg")
    learners = {h: Learner.from_local(task, spec, LocalData(partition=h), h) for h in HOSPITALS}
    return Population(spec, learners, "test")


def _pooled_test(pop: Population) -> Samples:
    tests = [learner.data.test for learner in pop.learners.values()]
    return Samples(np.concatenate([t.x for t in tests]), np.concatenate([t.y for t in tests]))


def test_one_round_is_the_sample_weighted_mean_of_the_local_steps(tmp_path: Path) -> None:
    pop = _heart({"epochs": 1, "lr": 0.01, "batch_size": 8, "seed": 7})
    result = simulate(
        "heart", 4, 1, 7, out=tmp_path, local_only=False, console=_quiet(), given_population=pop
    )
    assert result.final_weights is not None and len(result.aggregate_cids) == 1
    start = initial_weights(pop.spec)
    expected = fedavg(
        [(learner.train(start, 1), learner.num_samples) for learner in pop.learners.values()]
    )
    for key, tensor in expected.items():
        torch.testing.assert_close(result.final_weights[key], tensor, rtol=0, atol=1e-6)


def test_a_short_run_improves_on_the_initial_model(tmp_path: Path) -> None:
    pop = _heart({"epochs": 1, "lr": 0.01, "batch_size": 8, "seed": 0})
    result = simulate(
        "heart", 4, 5, 0, out=tmp_path, local_only=False, console=_quiet(), given_population=pop
    )
    assert result.final_weights is not None
    test = _pooled_test(pop)
    before = evaluate_weights(pop.spec, initial_weights(pop.spec), test)
    after = evaluate_weights(pop.spec, result.final_weights, test)
    assert after["auroc"] > before["auroc"] and after["auroc"] > 0.8
    assert after["accuracy"] > before["accuracy"] and after["accuracy"] > 0.7


def test_institutions_without_a_modality_leave_its_encoder_alone(tmp_path: Path) -> None:
    task = get_task("hapt")
    spec = task.default_spec(task_args={"n_institutions": 2})
    rng = np.random.default_rng(0)

    def acc_only(n: int) -> InstitutionData:
        def samples(m: int) -> Samples:
            acc = rng.normal(size=(m, 3, 128)).astype(np.float32)
            return Samples({"acc": acc}, rng.integers(0, 6, m))

        return InstitutionData(train=samples(n), test=samples(8), modalities=("acc",))

    learners = {n: Learner(task, spec, acc_only(24), n) for n in ("a", "b")}
    result = simulate(
        "hapt",
        2,
        1,
        0,
        out=tmp_path,
        local_only=False,
        console=_quiet(),
        given_population=Population(spec, learners, "test"),
    )
    assert result.final_weights is not None
    start = initial_weights(spec)
    gyro = [k for k in start if k.startswith("encoders.gyro.")]
    acc = [k for k in start if k.startswith("encoders.acc.")]
    assert gyro and acc
    assert all(torch.equal(result.final_weights[k], start[k]) for k in gyro)
    assert any(not torch.equal(result.final_weights[k], start[k]) for k in acc)


def test_a_population_of_another_size_or_task_is_refused(tmp_path: Path) -> None:
    pop = _heart({"seed": 0})
    with pytest.raises(ConfigError, match="not 3 learners of heart"):
        simulate("heart", 3, 1, out=tmp_path, console=_quiet(), given_population=pop)
