"""The pooled test set the simulation benches score a federation's final model on.

Every institution's test split with every modality, so the set is the same whichever
institutions lack a modality in training (HAPT institutions without a gyroscope train on the
accelerometer only, but are scored on both).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def pooled_full_test(task: Any, spec: Any, peers: int, seed: int) -> Any:
    """``Samples`` of all ``peers`` institutions' test splits of the simulator's plan."""
    from fedchain.localnet.plan import plan_for
    from models.sites import concatenate
    from models.tasks import LocalData
    from models.training import Samples

    tests = []
    for local in plan_for(task.name, peers, seed=seed).data.values():
        everything = {k: v for k, v in dict(local).items() if k != "modalities"}
        tests.append(task.load(spec, LocalData.model_validate(everything)).test)
    return Samples(concatenate([t.x for t in tests]), np.concatenate([t.y for t in tests]))
