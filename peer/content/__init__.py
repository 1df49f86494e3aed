"""Content-addressed storage of model weights and updates (IPFS via Kubo)."""
