"""Models are built by architecture name."""

from __future__ import annotations

import pytest
import torch

from fedchain.errors import ConfigError
from models.registry import build_model, build_model_from_spec, known_archs


def test_logreg_gives_two_logits_and_float32_tensors():
    model = build_model("logreg", in_features=13)
    out = model(torch.zeros(5, 13))
    assert out.shape == (5, 2)
    assert all(t.dtype == torch.float32 for t in model.state_dict().values())


def test_unknown_arch_names_the_known_ones():
    with pytest.raises(ConfigError) as info:
        build_model("transformer-xxl")
    assert "transformer-xxl" in str(info.value)
    for arch in known_archs():
        assert arch in str(info.value)


def test_bad_kwargs_are_config_errors():
    with pytest.raises(ConfigError, match="logreg"):
        build_model("logreg", in_features=13, depth=4)
    with pytest.raises(ConfigError):
        build_model("logreg", in_features=0)


def test_spec_round_trip():
    model = build_model_from_spec(
        {"arch": "logreg", "kwargs": {"in_features": 3, "num_classes": 4}}
    )
    assert model(torch.zeros(1, 3)).shape == (1, 4)
    with pytest.raises(ConfigError, match="arch"):
        build_model_from_spec({"kwargs": {}})
