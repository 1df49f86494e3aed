"""Evaluating an agreed model: non-finite outputs are named as such, not a crash."""

from __future__ import annotations

import pytest
import torch

from consensus.task_spec import ModelSpec, TaskSpec, TrainingSpec
from fedchain.errors import ProtocolError
from peer.training import evaluate, initial_weights, load_partition

SPEC = TaskSpec(
    name="heart-eval",
    dataset="heart",
    model=ModelSpec(arch="logreg", kwargs={"in_features": 13}),
    training=TrainingSpec(epochs=1, lr=0.05, batch_size=32, seed=3),
)


def test_agreed_model_with_overflowing_outputs_is_named_not_crashed() -> None:
    data = load_partition("heart", "cleveland")
    good = evaluate(SPEC, initial_weights(SPEC), data.x_test, data.y_test)
    assert 0.0 <= good["accuracy"] <= 1.0
    huge = {k: torch.full_like(v, 3.0e38) for k, v in initial_weights(SPEC).items()}
    for k in huge:
        huge[k].view(-1)[::2] = -3.0e38  # +inf and -inf partial sums meet: NaN logits
    with pytest.raises(ProtocolError, match="non-finite outputs on"):
        evaluate(SPEC, huge, data.x_test, data.y_test)
