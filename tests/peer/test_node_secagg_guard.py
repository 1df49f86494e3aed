"""A peer refuses a task with secure aggregation rather than send its update in the clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from fedchain.simulator.federation import TaskTiming, VirtualFederation
from tests.peer.test_node import NAMES, TinyLearner, tiny_spec


def test_a_node_refuses_a_secure_aggregation_task_at_start(tmp_path: Path) -> None:
    spec = TaskSpec.model_validate(
        {**tiny_spec("fedavg").model_dump(), "secure_aggregation": {"clip_norm": 1.0}}
    )
    fed = VirtualFederation(
        tmp_path,
        spec,
        {n: TinyLearner(n) for n in NAMES},
        TinyLearner("init").reference_weights(),
        TaskTiming(rounds=1),
    )
    with pytest.raises(ConfigError, match="asks for secure aggregation"):
        fed.start(NAMES[0])
    assert fed.deployer.submissions(fed.task_id, 1) == []  # nothing was sent
