"""The peer's side of secure aggregation (``consensus.secagg``).

Real peers do not mask their updates yet: only ``fedchain simulate --secure-aggregation`` runs
masked rounds.  Until they do, a task spec asking for secure aggregation is refused when the
node starts, rather than run with plain updates, which would show every member's update to the
others while the federation believes it hidden.
"""

from __future__ import annotations

from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError


def refuse_unsupported(spec: TaskSpec) -> None:
    """ConfigError if ``spec`` asks for secure aggregation, which this peer cannot run yet."""
    if spec.secure_aggregation is not None:
        raise ConfigError(
            f"task spec {spec.name!r} asks for secure aggregation, which peers do not run yet "
            "(only `fedchain simulate --secure-aggregation` does); this peer will not send its "
            "update in the clear instead: publish a task without secure_aggregation"
        )
