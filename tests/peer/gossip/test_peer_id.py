"""Peer IDs derived from seeds without libp2p must equal libp2p's own derivation."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedchain.errors import ConfigError
from peer.gossip.peer_id import (
    ED25519_SEED_BYTES,
    check_seed,
    generate_ed25519_seed,
    peer_id_from_seed,
)


@settings(max_examples=30, deadline=None)
@given(st.binary(min_size=ED25519_SEED_BYTES, max_size=ED25519_SEED_BYTES))
def test_peer_id_from_seed_matches_libp2p(seed: bytes) -> None:
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    expected = ID.from_pubkey(create_new_key_pair(seed).public_key).to_base58()
    assert peer_id_from_seed(seed) == expected


def test_generated_seeds_are_32_random_bytes_with_ed25519_peer_ids() -> None:
    seeds = {generate_ed25519_seed() for _ in range(8)}
    assert len(seeds) == 8
    for seed in seeds:
        assert len(seed) == ED25519_SEED_BYTES
        assert peer_id_from_seed(seed).startswith("12D3KooW")


def test_peer_id_is_deterministic() -> None:
    seed = bytes(range(32))
    assert peer_id_from_seed(seed) == peer_id_from_seed(bytes(range(32)))
    assert peer_id_from_seed(seed) != peer_id_from_seed(bytes(range(1, 33)))


@pytest.mark.parametrize("bad", [b"", b"\x01" * 31, b"\x01" * 33, "a" * 32])
def test_wrong_seed_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="32-byte Ed25519 seed"):
        check_seed(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        peer_id_from_seed(bad)  # type: ignore[arg-type]
