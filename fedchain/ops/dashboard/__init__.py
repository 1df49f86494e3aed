"""``fedchain dashboard``: a local web page showing the federation live.

- :mod:`.snapshot`: what the page shows, as one frozen value (JSON for the page);
- :mod:`.collect`: reading chain, IPFS and records into a snapshot (sources may be down);
- :mod:`.chain_facts`: gas and block times, from receipts and headers (cached);
- :mod:`.live`: the sources a running dashboard keeps open between polls;
- :mod:`.server`: the HTTP server (standard library) with the token rule;
- ``static/``: the page itself (HTML, CSS, JS; nothing loaded from elsewhere).
"""
