"""Differential privacy in local training: the budget, DP-SGD's guarantees, the peer's stop."""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from pydantic import ValidationError
from rich.console import Console
from torch import nn

from consensus.serialization import weights_to_bytes
from consensus.task_spec import PrivacySettings, TaskSpec, TrainingSettings
from fedchain.errors import ConfigError
from fedchain.simulator.partitions import population
from fedchain.simulator.run import simulate
from models.datasets.heart import load_heart_hospital
from models.privacy import PrivacyBudget, check_private_trainable, train_private
from models.registry import build_model
from models.tasks import Learner, LocalData, get_task
from models.training import Samples, train

ROOT = Path(__file__).resolve().parents[2]
FEDCHAIN = str(Path(sys.executable).parent / "fedchain")
DP = {"target_epsilon": 3.0, "max_grad_norm": 1.0}


def _private_learner(name: str, partition: str, **local: object) -> Learner:
    task = get_task(name)
    spec = task.default_spec().model_copy(update={"privacy": PrivacySettings(**DP)})
    return Learner.from_local(task, spec, LocalData(partition=partition, **local), partition)


def _digest(weights: dict[str, torch.Tensor]) -> str:
    return hashlib.sha256(weights_to_bytes(weights)).hexdigest()


@pytest.fixture(scope="module")
def cleveland() -> Samples:
    split = load_heart_hospital("cleveland")
    return Samples(split.x_train, split.y_train)


def test_derived_noise_spends_the_target_over_the_planned_rounds():
    training = TrainingSettings(epochs=2, lr=0.01, batch_size=16)
    for accountant in ("rdp", "prv"):
        settings = PrivacySettings(**DP, accountant=accountant)
        budget = PrivacyBudget.plan(settings, training, num_samples=200, planned_rounds=10)
        assert budget.sample_rate == pytest.approx(0.08)
        assert budget.steps_per_round == 2 * 12
        spent = [budget.epsilon(k) for k in range(0, 12)]
        assert spent[0] == 0.0 and all(a < b for a, b in itertools.pairwise(spent))
        assert 0.9 * 3.0 <= spent[10] <= 3.0 * 1.001, accountant
        assert budget.allows(10) and not budget.allows(11)


def test_a_given_noise_multiplier_is_used_as_is_and_more_noise_spends_less():
    training = TrainingSettings(epochs=1, lr=0.01, batch_size=10)
    low, high = (
        PrivacyBudget.plan(
            PrivacySettings(**DP, noise_multiplier=sigma), training, 100, planned_rounds=5
        )
        for sigma in (0.8, 3.0)
    )
    assert (low.noise_multiplier, high.noise_multiplier) == (0.8, 3.0)
    assert high.epsilon(5) < low.epsilon(5)


def test_spec_refuses_bad_privacy_settings():
    base = get_task("heart").default_spec().model_dump()
    for bad in ({"target_epsilon": 0, "max_grad_norm": 1}, {"target_epsilon": 1},
                {**DP, "delta": 1.5}, {**DP, "accountant": "gdp"}):  # fmt: skip
        with pytest.raises(ValidationError):
            TaskSpec.model_validate({**base, "privacy": bad})
    assert TaskSpec.model_validate({**base, "privacy": DP}).privacy == PrivacySettings(**DP)


def test_a_layer_dp_sgd_cannot_train_is_named():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten())
    with pytest.raises(ConfigError, match=r"layer 1 \(BatchNorm2d\).*GroupNorm"):
        check_private_trainable(model)
    check_private_trainable(build_model("logreg", in_features=13))


def test_clipping_bounds_what_one_patient_can_move_the_model(cleveland):
    """One full-batch SGD step, datasets differing in one patient whose record is scaled by
    1e4: plain training moves far; DP-SGD differs by at most lr * 2C / n (the noise, drawn
    from the same seed, cancels)."""
    x = np.array(cleveland.x, dtype=np.float32)
    y = np.asarray(cleveland.y)
    n = len(y)
    outlier = x.copy()
    outlier[0] *= 1e4
    training = TrainingSettings(epochs=1, lr=0.1, batch_size=n, optimizer="sgd")
    clip = 0.5
    budget = PrivacyBudget.plan(
        PrivacySettings(target_epsilon=1000, max_grad_norm=clip, noise_multiplier=0.5),
        training, n, planned_rounds=1,
    )  # fmt: skip
    assert budget.sample_rate == 1.0 and budget.steps_per_round == 1

    def step(data: np.ndarray, private: bool) -> torch.Tensor:
        torch.manual_seed(0)
        model = build_model("logreg", in_features=13)
        if private:
            train_private(model, Samples(data, y), training, budget, seed=5)
        else:
            train(model, Samples(data, y), training, seed=5)
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    private_gap = float((step(x, True) - step(outlier, True)).norm())
    plain_gap = float((step(x, False) - step(outlier, False)).norm())
    bound = training.lr * 2 * clip / n
    assert 0 < private_gap <= bound * 1.0001
    assert plain_gap > 100 * bound


def test_the_budget_matches_opacus_own_accountant_over_the_steps_training_took(
    cleveland, monkeypatch
):
    """Opacus's accountant, hooked to the DP optimizer as its PrivacyEngine does, counts every
    noisy step training really takes; after each round its epsilon is the budget's.  A tiny
    sample rate makes empty Poisson batches likely: they are noise-only steps, counted too."""
    from opacus.accountants import RDPAccountant
    from opacus.optimizers import DPOptimizer

    import models.privacy.dp_sgd as dp_sgd

    n = 8
    data = Samples(np.array(cleveland.x[:n], dtype=np.float32), np.asarray(cleveland.y[:n]))
    training = TrainingSettings(epochs=1, lr=0.05, batch_size=1, optimizer="sgd")
    budget = PrivacyBudget.plan(PrivacySettings(**DP), training, n, planned_rounds=4)
    assert budget.sample_rate == 1 / 8 and budget.steps_per_round == 8  # P(empty) = 0.34
    opacus_own = RDPAccountant()

    class Hooked(DPOptimizer):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            self.attach_step_hook(opacus_own.get_optimizer_hook_fn(budget.sample_rate))

    monkeypatch.setattr(dp_sgd, "DPOptimizer", Hooked)
    torch.manual_seed(0)
    model = build_model("logreg", in_features=13)
    empty = 0
    for round_no in range(1, 5):
        sampler = torch.Generator().manual_seed(round_no)
        empty += sum(
            int(not (torch.rand(n, generator=sampler) < budget.sample_rate).any())
            for _ in range(budget.steps_per_round)
        )
        before = torch.cat([p.detach().flatten() for p in model.parameters()])
        train_private(model, data, training, budget, seed=round_no)
        after = torch.cat([p.detach().flatten() for p in model.parameters()])
        assert not torch.equal(before, after)
        assert sum(steps for _, _, steps in opacus_own.history) == round_no * 8
        assert opacus_own.get_epsilon(1e-5) == pytest.approx(budget.epsilon(round_no), rel=1e-9)
    assert empty > 0, "the seeds drew no empty batch; pick others"
    assert budget.epsilon(4) <= 3.0 * 1.001


def test_dp_training_is_bit_identical_across_processes_and_noisy():
    script = """
import hashlib, json, sys
from consensus.serialization import weights_to_bytes
from consensus.task_spec import PrivacySettings
from models.tasks import Learner, LocalData, get_task, use_deterministic_torch
use_deterministic_torch()
task = get_task("heart")
privacy = PrivacySettings(**json.loads(sys.argv[1]))
spec = task.default_spec().model_copy(update={"privacy": privacy})
learner = Learner.from_local(task, spec, LocalData(partition="cleveland"), "cleveland")
learner.plan_privacy(5)
print(hashlib.sha256(weights_to_bytes(learner.train(learner.initial_weights(), 2))).hexdigest())
"""
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(DP)],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    learner = _private_learner("heart", "cleveland")
    with pytest.raises(ConfigError, match="plan the privacy budget"):
        learner.train(learner.initial_weights(), 2)
    learner.plan_privacy(5)
    start = learner.initial_weights()
    here = _digest(learner.train(start, 2))
    assert done.stdout.strip().splitlines()[-1] == here
    assert _digest(learner.train(start, 3)) != here  # other batches and noise each round
    plain = Learner(learner.task, learner.task.default_spec(), learner.data, "cleveland")
    assert _digest(plain.train(start, 2)) != here


def test_an_absent_modality_keeps_the_agreed_encoder():
    """An institution without a gyroscope trains its accelerometer path under DP-SGD; the gyro
    encoder gets neither gradient nor noise."""
    learner = _private_learner("hapt", "subjects-2", modalities=("acc",))
    learner.plan_privacy(3)
    start = learner.initial_weights()
    trained = learner.train(start, 1)
    gyro = [k for k in start if k.startswith("encoders.gyro.")]
    acc = [k for k in start if k.startswith("encoders.acc.")]
    assert gyro and acc
    assert all(torch.equal(trained[k], start[k]) for k in gyro)
    assert any(not torch.equal(trained[k], start[k]) for k in acc)


def test_a_peer_stops_submitting_when_its_budget_is_spent(tmp_path):
    """Real peer nodes (simulator): with noise multiplier 2 and a target of 9, Switzerland (30
    patients, sampling rate 0.53) may release 3 updates; the others last all 5 rounds."""
    task = get_task("heart")
    base = population(task, 4, 0)
    privacy = PrivacySettings(target_epsilon=9.0, max_grad_norm=1.0, noise_multiplier=2.0)
    spec = base.spec.model_copy(update={"privacy": privacy})
    learners = {n: Learner(task, spec, ln.data, n) for n, ln in base.learners.items()}
    expected = {}
    for name, learner in learners.items():
        budget = learner.plan_privacy(5)
        assert budget is not None
        expected[name] = [budget.epsilon(k) for k in range(1, 6) if budget.allows(k)]
    assert len(expected["switzerland"]) == 3
    assert all(len(v) == 5 for n, v in expected.items() if n != "switzerland")
    result = simulate(
        "heart", 4, 5, 0, out=tmp_path, local_only=False,
        console=Console(stderr=True, quiet=True),
        given_population=type(base)(spec, learners, base.partition),
    )  # fmt: skip
    assert len(result.record["rounds"]) == 5
    for name, spent in expected.items():
        entries = [
            json.loads(line)
            for line in (tmp_path / "peers" / name / "history.jsonl").read_text().splitlines()
        ]
        assert [e["epsilon"] for e in entries if "epsilon" in e] == spent
        # ... and the chain holds the latest figure, in thousandths rounded up
        assert result.record["institutions"][name]["epsilon_spent"] == math.ceil(
            spent[-1] * 1000
        ) / 1000
        refused = [e["not_trained"] for e in entries if e.get("not_trained")]
        if name == "switzerland":
            assert len(refused) == 2 and all("privacy budget spent" in r for r in refused)
            assert "update 4 would bring epsilon to 9.71, over the agreed 9" in refused[0]
        else:
            assert refused == []


def test_simulate_cli_runs_a_private_federation(tmp_path):
    bad = subprocess.run(
        [FEDCHAIN, "simulate", "--dp-epsilon", "0"],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert bad.returncode != 0 and "--dp-epsilon" in bad.stderr and "must be > 0" in bad.stderr
    done = subprocess.run(
        [FEDCHAIN, "simulate", "--rounds", "1", "--no-local-only",
         "--dp-epsilon", "2", "--dp-clip", "0.5", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["task_spec"]["privacy"]["target_epsilon"] == 2.0
    assert record["task_spec"]["privacy"]["max_grad_norm"] == 0.5
    spent = [i["epsilon_spent"] for i in record["institutions"].values()]
    assert all(0 < e <= 2.0 for e in spent), spent
