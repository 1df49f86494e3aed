"""The federation's ledger: the Federation contract, compiled from source, and a typed client.

- :mod:`fedchain.contract_build`: compile ``contracts/`` (cached) with py-solc-x.
- :mod:`peer.ledger.client`: :class:`FederationClient`, :func:`deploy`, :func:`connect`.
- :mod:`peer.ledger.errors`: one exception per contract error.
- :mod:`peer.ledger.events`: one record type per contract event.
- :mod:`peer.ledger.types`: task, round, proposal and transaction views.
"""
