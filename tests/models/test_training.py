"""The one trainer and the one evaluate: deterministic, learning, strict about their inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError, DataError, ProtocolError
from models.datasets.heart import load_heart_hospital
from models.metrics import METRIC_NAMES
from models.registry import build_model
from models.training import Samples, evaluate, predict_proba, train


def hp(epochs: int = 1, lr: float = 0.01, batch_size: int = 8, **kw) -> TrainingSettings:
    return TrainingSettings(epochs=epochs, lr=lr, batch_size=batch_size, **kw)


@pytest.fixture(scope="module")
def cleveland():
    split = load_heart_hospital("cleveland")
    return Samples(split.x_train, split.y_train), Samples(split.x_test, split.y_test)


def _fresh(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("logreg", in_features=13)


def test_same_seed_gives_bit_identical_weights(cleveland):
    data, _ = cleveland
    a, b = _fresh(), _fresh()
    loss_a = train(a, data, hp(3), seed=11)
    loss_b = train(b, data, hp(3), seed=11)
    assert loss_a == loss_b
    for key, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[key])
    c = _fresh()
    train(c, data, hp(3), seed=12)
    assert not torch.equal(a.state_dict()["linear.weight"], c.state_dict()["linear.weight"])


def test_caller_rng_state_is_untouched(cleveland):
    model = _fresh()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(model, cleveland[0], hp(batch_size=32), seed=1)
    assert torch.equal(torch.rand(3), expected)


def test_training_improves_on_the_initial_model(cleveland):
    data, test = cleveland
    model = _fresh()
    before = evaluate(model, test)
    loss = train(model, data, hp(30, batch_size=16), seed=0)
    after = evaluate(model, test)
    assert set(after) == set(METRIC_NAMES)
    assert loss < 0.6
    assert after["auroc"] > 0.8 and after["auroc"] > before["auroc"]
    assert after["accuracy"] > 0.7


def test_evaluate_names_non_finite_outputs(cleveland):
    model = _fresh()
    with torch.no_grad():
        model.state_dict()["linear.weight"].fill_(3.0e38)
        model.state_dict()["linear.weight"].view(-1)[::2] = -3.0e38
    with pytest.raises(ProtocolError, match=r"non-finite outputs on \d+ of 104 local test samples"):
        evaluate(model, cleveland[1])


def test_predict_proba_shapes(cleveland):
    x = cleveland[1].x
    probs = predict_proba(_fresh(), x)
    assert probs.shape == (x.shape[0],)
    assert np.all((probs >= 0) & (probs <= 1))
    multi = build_model("logreg", in_features=13, num_classes=3)
    probs3 = predict_proba(multi, x)
    assert probs3.shape == (x.shape[0], 3)
    np.testing.assert_allclose(probs3.sum(axis=1), 1.0, atol=1e-9)


def test_bad_arguments_are_rejected(cleveland):
    data, _ = cleveland
    for bad in ({"batch_size": 0}, {"epochs": 0}, {"optimizer": "rmsprop"}, {"lr": 0.0}):
        with pytest.raises(ValidationError):
            hp(**bad)
    unchecked = TrainingSettings.model_construct(
        epochs=1, lr=0.1, batch_size=0, seed=0, weight_decay=0.0, optimizer="adam"
    )
    with pytest.raises(ConfigError, match="batch_size"):
        train(_fresh(), data, unchecked, seed=0)
    rmsprop = unchecked.model_copy(update={"batch_size": 4, "optimizer": "rmsprop"})
    with pytest.raises(ConfigError, match="rmsprop"):
        train(_fresh(), data, rmsprop, seed=0)
    with pytest.raises(DataError, match="labels"):
        train(_fresh(), Samples(data.x, data.y[:-1]), hp(), seed=0)
    with pytest.raises(DataError, match=">= 0"):
        train(_fresh(), Samples(data.x, data.y - 1), hp(), seed=0)


def test_sgd_also_learns(cleveland):
    data, test = cleveland
    model = _fresh()
    train(model, data, hp(10, batch_size=16, optimizer="sgd"), seed=0)
    assert evaluate(model, test)["auroc"] > 0.8


def test_multimodal_input_must_agree_on_sample_count():
    model = build_model("logreg", in_features=2)
    x = {"a": np.zeros((3, 2), np.float32), "b": np.zeros((4, 2), np.float32)}
    with pytest.raises(DataError, match="disagree"):
        train(model, Samples(x, np.zeros(3, np.int64)), hp(batch_size=2), seed=0)
