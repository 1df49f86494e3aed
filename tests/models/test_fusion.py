"""The fusion model trains and predicts with every subset of its modalities."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError, DataError
from models.datasets.hapt import load_hapt_windows
from models.metrics import classification_metrics
from models.nets.fusion import AttentionFusion
from models.registry import build_model, init_model
from models.training import Samples, predict_proba
from models.training import train as train_model

# Small widths keep these tests fast on two busy cores.
MODALITIES = {
    "ehr": {"kind": "tabular", "in_features": 6, "hidden": 16},
    "signal": {"kind": "signal", "in_channels": 2, "width": 8},
    "image": {"kind": "image", "in_channels": 1, "image_size": 16, "width": 4},
}
SMALL = {"modalities": MODALITIES, "num_classes": 3, "embed_dim": 16, "head_hidden": 16}


def _synthetic(n: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Three classes, each visible (noisily) in every modality on its own."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    ehr = rng.normal(size=(n, 6)).astype(np.float32)
    ehr[:, 0] += 3.0 * y
    t = np.linspace(0, 1, 32, dtype=np.float32)
    signal = rng.normal(scale=0.5, size=(n, 2, 32)).astype(np.float32)
    signal[:, 0] += np.sin(2 * np.pi * (1 + y)[:, None] * t)
    image = rng.normal(scale=0.5, size=(n, 1, 16, 16)).astype(np.float32)
    for cls in range(3):
        image[y == cls, 0, 4 * cls : 4 * cls + 4, :] += 1.5
    return {"ehr": ehr, "signal": signal, "image": image}, y


def _subsets() -> list[tuple[str, ...]]:
    names = sorted(MODALITIES)
    return [c for r in range(1, 4) for c in itertools.combinations(names, r)]


@pytest.fixture(scope="module")
def trained_with_dropout():
    x, y = _synthetic(400, seed=0)
    model = init_model({"arch": "fusion", "kwargs": {**SMALL, "modality_dropout": 0.5}}, seed=0)
    train_model(model, Samples(x, y), TrainingSettings(epochs=10, lr=1e-2, batch_size=32), 0)
    return model


@pytest.mark.parametrize("subset", _subsets(), ids=lambda s: "+".join(s))
def test_predicts_with_every_subset(trained_with_dropout, subset):
    x, y = _synthetic(200, seed=1)
    probs = predict_proba(trained_with_dropout, {m: x[m] for m in subset})
    assert probs.shape == (200, 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    assert classification_metrics(y, probs)["accuracy"] > 0.8  # chance is 1/3


@pytest.mark.parametrize("subset", _subsets(), ids=lambda s: "+".join(s))
def test_trains_on_every_subset(subset):
    x, y = _synthetic(64, seed=2)
    model = init_model({"arch": "fusion", "kwargs": SMALL}, seed=1)
    encoders_before = {k: v.clone() for k, v in model.state_dict().items()}
    settings = TrainingSettings(epochs=1, lr=3e-3, batch_size=32)
    loss = train_model(model, Samples({m: x[m] for m in subset}, y), settings, seed=0)
    assert np.isfinite(loss)
    after = model.state_dict()
    assert isinstance(model, AttentionFusion)
    for name in MODALITIES:
        prefix = model.encoder_prefix(name)
        changed = any(
            not torch.equal(after[k], encoders_before[k]) for k in after if k.startswith(prefix)
        )
        assert changed == (name in subset), name  # absent encoders get no gradient


def test_attention_covers_present_modalities_only(trained_with_dropout):
    x, _ = _synthetic(10, seed=3)
    tensors = {m: torch.from_numpy(x[m]) for m in ("ehr", "image")}
    _, weights = trained_with_dropout.eval().embed(tensors)
    assert weights.shape == (10, 2)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(10))


def test_modality_dropout_keeps_at_least_one():
    model = build_model("fusion", **{**SMALL, "modality_dropout": 0.95})
    assert isinstance(model, AttentionFusion)
    mask = model._dropout_mask(1000, 3, torch.device("cpu"))
    assert bool(mask.any(dim=1).all())
    assert float(mask.float().mean()) < 0.5


def test_bad_inputs_are_explained():
    model = build_model("fusion", **SMALL)
    with pytest.raises(DataError, match="unknown modalities"):
        model({"ecg": torch.zeros(2, 3)})
    with pytest.raises(DataError, match="at least one"):
        model({})
    with pytest.raises(ConfigError, match="kind"):
        build_model("fusion", modalities={"a": {"in_features": 3}}, num_classes=2)
    with pytest.raises(ConfigError, match="unknown encoder kind"):
        build_model("fusion", modalities={"a": {"kind": "audio"}}, num_classes=2)


def test_state_is_float32_tensors_only():
    model = build_model("fusion", **{**SMALL, "modality_dropout": 0.2})
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())


def test_real_hapt_windows_any_modality():
    """A few epochs on real HAPT windows: acc, gyro and both all beat chance (1/6)."""
    windows = load_hapt_windows()
    rng = np.random.default_rng(0)
    train = rng.choice(np.flatnonzero(windows.subjects <= 3), 600, replace=False)
    test = np.flatnonzero(windows.subjects == 4)
    spec = {"kind": "signal", "in_channels": 3, "width": 8}
    model = build_model(
        "fusion", modalities={"acc": spec, "gyro": spec}, num_classes=6, modality_dropout=0.5
    )
    x, y = windows.modalities(train), windows.labels[train]
    train_model(model, Samples(x, y), TrainingSettings(epochs=6, lr=3e-3, batch_size=64), 0)
    accuracy = {}
    for subset in (("acc",), ("gyro",), ("acc", "gyro")):
        inputs = {m: windows.modalities(test)[m] for m in subset}
        probs = predict_proba(model, inputs)
        accuracy[subset] = classification_metrics(windows.labels[test], probs)["accuracy"]
    assert all(value > 0.25 for value in accuracy.values()), accuracy
    assert accuracy[("acc", "gyro")] > 0.4, accuracy
