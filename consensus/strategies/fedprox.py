"""FedProx (Li et al., "Federated Optimization in Heterogeneous Networks", 2020).

The server side is FedAvg, so it is deterministic for the same reasons (float64 in canonical
order, one cast to float32).  The algorithm's other half is on the clients: each member adds
``mu / 2 * ||w - w_global||^2`` to its local loss, declared by :meth:`FedProx.client_hooks`
and applied by ``models.training.train``.
"""

from __future__ import annotations

from typing import Any

from consensus.strategies.abc import ClientHooks
from consensus.strategies.fedavg import FedAvg
from consensus.strategies.params import real


class FedProx(FedAvg):
    """FedAvg on the server, a proximal term of strength ``mu`` (> 0, default 0.01) on clients."""

    name = "fedprox"

    def __init__(self, mu: float = 0.01) -> None:
        self.mu = real(self.name, "mu", mu, low=0.0, low_open=True)

    def client_hooks(self) -> ClientHooks:
        return ClientHooks(proximal_mu=self.mu)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "mu": self.mu}
