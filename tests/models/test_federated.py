"""In-process FedAvg through consensus.aggregation improves on the initial model."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError
from models.baselines import pool_sites, train_pooled
from models.datasets.heart import HOSPITALS, load_heart_all
from models.federated import fedavg_round, float_state, run_fedavg, site_seed
from models.registry import build_model, init_model
from models.sites import Site
from models.training import Samples, train
from models.training import evaluate as evaluate_samples

LOGREG = {"arch": "logreg", "kwargs": {"in_features": 13}}
HP = TrainingSettings(epochs=1, lr=0.01, batch_size=8)


def evaluate(model: torch.nn.Module, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    return evaluate_samples(model, Samples(x, y))


@pytest.fixture(scope="module")
def heart():
    splits = load_heart_all()
    sites = [Site(h, splits[h].x_train, splits[h].y_train) for h in HOSPITALS]
    x_test = np.concatenate([splits[h].x_test for h in HOSPITALS])
    y_test = np.concatenate([splits[h].y_test for h in HOSPITALS])
    return sites, x_test, y_test


def _pooled_loss(model: torch.nn.Module, sites: list[Site]) -> float:
    pooled = pool_sites(sites)
    assert isinstance(pooled.x, np.ndarray)
    with torch.no_grad():
        logits = model(torch.from_numpy(pooled.x))
        return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(pooled.y)))


def test_short_federated_run_improves_on_initial_model(heart):
    sites, x_test, y_test = heart
    model = init_model(LOGREG, seed=0)
    before = evaluate(model, x_test, y_test)
    loss_before = _pooled_loss(model, sites)
    history = run_fedavg(model, sites, rounds=5, local=HP, seed=0)
    after = evaluate(model, x_test, y_test)
    assert len(history) == 5 and history[-1] < history[0]
    assert _pooled_loss(model, sites) < loss_before
    assert after["auroc"] > before["auroc"] and after["auroc"] > 0.8
    assert after["accuracy"] > before["accuracy"] and after["accuracy"] > 0.7


def test_round_is_the_sample_weighted_mean_of_local_models(heart):
    sites, _, _ = heart
    model = init_model(LOGREG, seed=1)
    start = copy.deepcopy(model)
    fedavg_round(model, sites, HP, seed=7, round_index=3)
    expected: dict[str, np.ndarray] = {}
    total = sum(site.size for site in sites)
    for index, site in enumerate(sites):
        replica = copy.deepcopy(start)
        train(replica, site.samples, HP, seed=site_seed(7, 3, index))
        for key, tensor in float_state(replica).items():
            term = tensor.double().numpy() * site.size
            expected[key] = expected.get(key, 0.0) + term
    for key, tensor in model.state_dict().items():
        np.testing.assert_allclose(tensor.numpy(), expected[key] / total, rtol=0, atol=1e-6)


def test_federated_runs_are_reproducible(heart):
    sites, _, _ = heart
    a, b = init_model(LOGREG, seed=2), init_model(LOGREG, seed=2)
    run_fedavg(a, sites, rounds=2, local=HP, seed=5)
    run_fedavg(b, sites, rounds=2, local=HP, seed=5)
    for key, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[key])


def test_sites_lacking_a_modality_leave_its_encoder_alone():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    acc = rng.normal(size=(40, 3, 16)).astype(np.float32)
    gyro = rng.normal(size=(40, 3, 16)).astype(np.float32)
    spec = {"kind": "signal", "in_channels": 3, "width": 4}
    model = build_model(
        "fusion", modalities={"acc": spec, "gyro": spec}, num_classes=2, embed_dim=8
    )
    gyro_before = {
        k: v.clone() for k, v in model.state_dict().items() if k.startswith("encoders.gyro.")
    }
    sites = [Site("a", {"acc": acc[:20]}, y[:20]), Site("b", {"acc": acc[20:]}, y[20:])]
    run_fedavg(model, sites, rounds=1, local=HP, seed=0)
    for key, tensor in gyro_before.items():
        assert torch.equal(model.state_dict()[key], tensor)
    mixed = [
        Site("a", {"acc": acc[:20]}, y[:20]),
        Site("b", {"acc": acc[20:], "gyro": gyro[20:]}, y[20:]),
    ]
    run_fedavg(model, mixed, rounds=1, local=HP, seed=0)
    assert any(not torch.equal(model.state_dict()[k], v) for k, v in gyro_before.items())


def test_pooled_baseline_and_bad_arguments(heart):
    sites, x_test, y_test = heart
    model = train_pooled(
        init_model(LOGREG, seed=0),
        sites,
        TrainingSettings(epochs=5, lr=0.01, batch_size=16),
        seed=0,
    )
    assert evaluate(model, x_test, y_test)["accuracy"] > 0.7
    with pytest.raises(ConfigError, match="rounds"):
        run_fedavg(model, sites, rounds=0, local=HP, seed=0)
    with pytest.raises(ConfigError, match="at least one site"):
        run_fedavg(model, [], rounds=1, local=HP, seed=0)
    with pytest.raises(ConfigError, match="different modalities"):
        pool_sites(
            [
                Site("a", {"acc": np.zeros((2, 3))}, np.zeros(2)),
                Site("b", {"gyro": np.zeros((2, 3))}, np.zeros(2)),
            ]
        )
