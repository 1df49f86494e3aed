"""How fedchain makes training bit-identical across processes.

A peer process and the simulator must produce the very same update bytes for the same
(spec, global model, round, institution): peers agree on aggregates by digest, and the
simulator is only a faithful twin if it reproduces a real peer exactly. On CPU that holds when

* every random draw comes from a seed that is a pure function of the agreed spec, the round
  and the institution (``models.tasks.learner.round_seed``), inside a forked RNG context;
* torch runs with ONE intra-op thread: reductions split over several threads add in an order
  that depends on the thread count, so two machines (or two processes with different
  ``OMP_NUM_THREADS``) could differ in the last bits; and
* torch uses its deterministic algorithms where it has a choice.

Peers and the simulator call :func:`use_deterministic_torch` once at start-up, before any model
is built. One thread is also the faster choice for these small models on shared cores.
"""

from __future__ import annotations

import torch


def use_deterministic_torch() -> None:
    """One intra-op thread and deterministic algorithms (warn only where torch has none)."""
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
