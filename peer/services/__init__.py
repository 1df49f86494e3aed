"""Launchers for the outside programs a node or a test network runs (Kubo, chains, peers)."""
