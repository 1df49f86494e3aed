"""What the peer node calls on its Learner: train, num_samples, evaluate of an agreed model."""

from __future__ import annotations

import pytest
import torch

from consensus.task_spec import TrainingSettings
from fedchain.errors import ProtocolError
from models.tasks import Learner, LocalData, get_task, initial_weights, reference_weights

TASK = get_task("heart")
SPEC = TASK.default_spec(
    name="heart-eval", training=TrainingSettings(epochs=1, lr=0.05, batch_size=32, seed=3)
)


@pytest.fixture(scope="module")
def learner() -> Learner:
    return Learner.from_local(TASK, SPEC, LocalData(partition="cleveland"), "cleveland")


def test_agreed_model_with_overflowing_outputs_is_named_not_crashed(learner):
    good = learner.evaluate(initial_weights(SPEC))
    assert 0.0 <= good["accuracy"] <= 1.0
    huge = {k: torch.full_like(v, 3.0e38) for k, v in initial_weights(SPEC).items()}
    for k in huge:
        huge[k].view(-1)[::2] = -3.0e38  # +inf and -inf partial sums meet: NaN logits
    with pytest.raises(ProtocolError, match="non-finite outputs on"):
        learner.evaluate(huge)


def test_node_facing_surface(learner):
    assert learner.num_samples == 200
    start = initial_weights(SPEC)
    update = learner.train(start, round_no=2)
    assert {k: v.shape for k, v in update.items()} == {
        k: v.shape for k, v in reference_weights(SPEC).items()
    }
    other = Learner(TASK, SPEC, learner.data, "hungary")  # same data, another institution
    assert not torch.equal(other.train(start, 2)["linear.weight"], update["linear.weight"])
