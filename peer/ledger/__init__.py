"""The federation's ledger: the shipped contract artifact, its interface and a typed client.

- :mod:`peer.ledger.artifact`: the built contract (ABI, bytecode) shipped with the package.
- :mod:`peer.ledger.abc`: :class:`FederationLedger`, the interface the peer is written against.
- :mod:`peer.ledger.client`: :class:`FederationClient`, :func:`deploy`, :func:`connect`.
- :mod:`peer.ledger.memory`: :class:`MemoryChain`, the contract's rules in memory (the twin
  that unit tests and the simulator run on; it passes the same suite as Anvil and Ganache).
- :mod:`peer.ledger.errors`: one exception per contract error.
- :mod:`peer.ledger.events`: one record type per contract event.
- :mod:`peer.ledger.types`: task, round, proposal and transaction views.
"""
