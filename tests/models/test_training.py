"""Local training is deterministic and actually learns."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedchain.errors import ConfigError, DataError
from models.datasets.heart import load_heart_hospital
from models.metrics import classification_metrics
from models.registry import build_model
from models.training import predict_proba, train_local


@pytest.fixture(scope="module")
def cleveland():
    return load_heart_hospital("cleveland")


def _fresh(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model("logreg", in_features=13)


def test_same_seed_gives_bit_identical_weights(cleveland):
    a, b = _fresh(), _fresh()
    x, y = cleveland.x_train, cleveland.y_train
    loss_a = train_local(a, x, y, epochs=3, lr=0.01, batch_size=8, seed=11)
    loss_b = train_local(b, x, y, epochs=3, lr=0.01, batch_size=8, seed=11)
    assert loss_a == loss_b
    for key, tensor in a.state_dict().items():
        assert torch.equal(tensor, b.state_dict()[key])
    c = _fresh()
    train_local(c, x, y, epochs=3, lr=0.01, batch_size=8, seed=12)
    assert not torch.equal(a.state_dict()["linear.weight"], c.state_dict()["linear.weight"])


def test_caller_rng_state_is_untouched(cleveland):
    model = _fresh()
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_local(
        model, cleveland.x_train, cleveland.y_train, epochs=1, lr=0.01, batch_size=32, seed=1
    )
    assert torch.equal(torch.rand(3), expected)


def test_training_improves_on_the_initial_model(cleveland):
    model = _fresh()
    before = classification_metrics(cleveland.y_test, predict_proba(model, cleveland.x_test))
    loss = train_local(
        model, cleveland.x_train, cleveland.y_train, epochs=30, lr=0.01, batch_size=16, seed=0
    )
    after = classification_metrics(cleveland.y_test, predict_proba(model, cleveland.x_test))
    assert loss < 0.6
    assert after["auroc"] > 0.8 and after["auroc"] > before["auroc"]
    assert after["accuracy"] > 0.7


def test_predict_proba_shapes(cleveland):
    probs = predict_proba(_fresh(), cleveland.x_test)
    assert probs.shape == (cleveland.x_test.shape[0],)
    assert np.all((probs >= 0) & (probs <= 1))
    multi = build_model("logreg", in_features=13, num_classes=3)
    probs3 = predict_proba(multi, cleveland.x_test)
    assert probs3.shape == (cleveland.x_test.shape[0], 3)
    np.testing.assert_allclose(probs3.sum(axis=1), 1.0, atol=1e-9)


def test_bad_arguments_are_rejected(cleveland):
    x, y = cleveland.x_train, cleveland.y_train
    with pytest.raises(ConfigError, match="batch_size"):
        train_local(_fresh(), x, y, epochs=1, lr=0.1, batch_size=0, seed=0)
    with pytest.raises(ConfigError, match="epochs"):
        train_local(_fresh(), x, y, epochs=0, lr=0.1, batch_size=4, seed=0)
    with pytest.raises(DataError, match="labels"):
        train_local(_fresh(), x, y[:-1], epochs=1, lr=0.1, batch_size=4, seed=0)


def test_sgd_also_learns_and_unknown_optimizers_are_refused(cleveland):
    model = _fresh()
    x, y = cleveland.x_train, cleveland.y_train
    train_local(model, x, y, epochs=10, lr=0.01, batch_size=16, seed=0, optimizer="sgd")
    assert (
        classification_metrics(cleveland.y_test, predict_proba(model, cleveland.x_test))["auroc"]
        > 0.8
    )
    with pytest.raises(ConfigError, match="rmsprop"):
        train_local(_fresh(), x, y, epochs=1, lr=0.1, batch_size=4, seed=0, optimizer="rmsprop")
    with pytest.raises(DataError, match=">= 0"):
        train_local(_fresh(), x, y - 1, epochs=1, lr=0.1, batch_size=4, seed=0)


def test_multimodal_input_must_agree_on_sample_count():
    model = build_model("logreg", in_features=2)
    with pytest.raises(DataError, match="disagree"):
        train_local(
            model,
            {"a": np.zeros((3, 2), np.float32), "b": np.zeros((4, 2), np.float32)},
            np.zeros(3, np.int64),
            epochs=1,
            lr=0.1,
            batch_size=2,
            seed=0,
        )
