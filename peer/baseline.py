"""The local-only baseline: what an institution would have got without the federation.

Trained once the task has completed (so it never slows a round), from the task's initial model,
on the institution's own training data for as many epochs as the task's rounds trained, by the
same code the demo and the simulator use (:func:`models.tasks.learner.train_alone`); its metrics
on the own test split go to ``state_dir/local_only.json`` beside ``history.jsonl``, where the
dashboard and ``fedchain report`` put them next to the federated model's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fedchain.errors import ConfigError
from fedchain.private_files import read_json_file, write_private_text

if TYPE_CHECKING:  # torch only where the baseline is trained, not where it is read
    import torch

    from models.tasks.learner import Learner

log = logging.getLogger("fedchain.training")

LOCAL_ONLY_FILE = "local_only.json"


def record_local_only(
    learner: Learner, initial: Mapping[str, torch.Tensor], rounds: int, state_dir: Path
) -> dict[str, float]:
    """Train the baseline, write its metrics, return them (kept if already written for
    ``rounds``: a peer restarted after its task completed does not train it again)."""
    from models.tasks.learner import train_alone

    known = read_local_only(state_dir)
    if known is not None and known.get("rounds") == rounds:
        return dict(known["metrics"])
    epochs = learner.spec.training.epochs * rounds
    log.info("training the local-only baseline: %d epochs on this institution's data", epochs)
    started = time.monotonic()
    weights = train_alone(
        learner.task, learner.spec, learner.data, learner.institution, initial, rounds
    )
    metrics = learner.evaluate(weights)
    entry = {"rounds": rounds, "epochs": epochs, "metrics": metrics}
    write_private_text(state_dir / LOCAL_ONLY_FILE, json.dumps(entry, indent=2) + "\n")
    log.info(
        "local-only baseline in %.1f s: %s",
        time.monotonic() - started,
        ", ".join(f"{k} {v:.4f}" for k, v in sorted(metrics.items())),
    )
    return metrics


def read_local_only(state_dir: Path) -> dict[str, Any] | None:
    """The recorded baseline (``rounds``, ``epochs``, ``metrics``), or None if there is none."""
    path = state_dir / LOCAL_ONLY_FILE
    entry = read_json_file(path, "a readable local-only baseline")
    if entry is None:
        return None
    metrics = entry.get("metrics") if isinstance(entry, dict) else None
    if not isinstance(metrics, dict) or not all(
        isinstance(v, int | float) for v in metrics.values()
    ):
        raise ConfigError(f"{path} has no 'metrics' of numbers; delete it to train it again")
    return dict(entry)
