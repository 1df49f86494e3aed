"""FedProx's client half: the proximal term keeps local training near the global model."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError
from models.datasets.heart import load_heart_hospital
from models.registry import build_model
from models.tasks import Learner, LocalData, get_task, initial_weights
from models.training import Samples, train

SETTINGS = TrainingSettings(epochs=5, lr=0.05, batch_size=16)


@pytest.fixture(scope="module")
def data() -> Samples:
    split = load_heart_hospital("cleveland")
    return Samples(split.x_train, split.y_train)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _fresh() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("logreg", in_features=13)


def _distance(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return sum(float(((sa[k] - sb[k]).double() ** 2).sum()) for k in sa) ** 0.5


def test_proximal_term_keeps_weights_closer_to_the_start(data: Samples) -> None:
    start = _fresh()
    moved = {}
    for mu in (0.0, 1.0, 10.0):
        model = _fresh()
        train(model, data, SETTINGS, seed=3, proximal_mu=mu)
        moved[mu] = _distance(model, start)
    assert moved[0.0] > moved[1.0] > moved[10.0] > 0


def test_mu_zero_is_exactly_plain_training(data: Samples) -> None:
    a, b = _fresh(), _fresh()
    loss_a = train(a, data, SETTINGS, seed=4)
    loss_b = train(b, data, SETTINGS, seed=4, proximal_mu=0.0)
    assert loss_a == loss_b
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


def test_proximal_training_is_deterministic(data: Samples) -> None:
    a, b = _fresh(), _fresh()
    train(a, data, SETTINGS, seed=5, proximal_mu=0.5)
    train(b, data, SETTINGS, seed=5, proximal_mu=0.5)
    assert all(torch.equal(v, b.state_dict()[k]) for k, v in a.state_dict().items())


@pytest.mark.parametrize("mu", [-0.1, float("nan"), float("inf")])
def test_bad_mu_is_refused(data: Samples, mu: float) -> None:
    with pytest.raises(ConfigError, match="proximal_mu"):
        train(_fresh(), data, SETTINGS, seed=0, proximal_mu=mu)


def test_proximal_gradient_equals_adding_the_term_to_the_loss(data: Samples) -> None:
    """Same steps as autograd on ``loss / b + mu / 2 * ||w - w_start||^2`` (up to rounding)."""
    settings = TrainingSettings(epochs=2, lr=0.05, batch_size=64, optimizer="sgd")
    mu, seed = 0.7, 9
    trained = _fresh()
    train(trained, data, settings, seed=seed, proximal_mu=mu)

    model = _fresh()
    start = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=settings.lr, momentum=0.9)
    x = torch.from_numpy(np.asarray(data.x, dtype=np.float32))
    y = torch.from_numpy(np.asarray(data.y).astype(np.int64))
    shuffler = torch.Generator().manual_seed(seed)
    for _ in range(settings.epochs):
        order = torch.randperm(len(y), generator=shuffler)
        for batch in order.split(settings.batch_size):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch], reduction="sum")
            prox = sum(((p - s) ** 2).sum() for p, s in zip(model.parameters(), start, strict=True))
            (loss / len(batch) + mu / 2 * prox).backward()
            opt.step()
    for key, value in model.state_dict().items():
        assert torch.allclose(value, trained.state_dict()[key], rtol=1e-5, atol=1e-6)


def test_learner_applies_the_agreed_rules_proximal_term() -> None:
    task = get_task("heart")
    training = TrainingSettings(epochs=3, lr=0.05, batch_size=32, seed=3)
    plain = task.default_spec(name="plain", training=training)
    prox = task.default_spec(
        name="prox", training=training, aggregation={"rule": "fedprox", "params": {"mu": 5.0}}
    )
    a = Learner.from_local(task, plain, LocalData(partition="cleveland"), "cleveland")
    b = Learner(task, prox, a.data, "cleveland")
    assert (a.proximal_mu, b.proximal_mu) == (0.0, 5.0)
    start = initial_weights(plain)
    assert b.round_seed(2) == a.round_seed(2)
    far, near = a.train(start, 2), b.train(start, 2)

    def moved(w: dict[str, torch.Tensor]) -> float:
        return sum(float(((w[k] - start[k]).double() ** 2).sum()) for k in start)

    assert moved(far) > moved(near) > 0
