"""Operator tooling that runs beside a peer, never inside it.

- :mod:`fedchain.ops.init`: ``fedchain init``, an institution's keys and config in one step;
- :mod:`fedchain.ops.status`: ``fedchain status``, one line per part an operator must watch,
  read from the chain, the own Kubo and the peer's own files only;
- :mod:`fedchain.ops.report`: ``fedchain report``, a self-contained HTML report of a run.
"""
