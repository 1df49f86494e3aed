"""Members-only weights: updates and aggregates sealed to the members' on-chain X25519 keys."""
