"""The quorum devnet and demo tasks get: 2/3 of the members, rounded up."""

from __future__ import annotations

import pytest

from consensus.protocol import default_quorum
from fedchain.errors import ConfigError
from fedchain.localnet.devnet import check_quorum


@pytest.mark.parametrize(("members", "quorum"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4)])
def test_default_quorum_is_two_thirds_rounded_up(members: int, quorum: int) -> None:
    assert default_quorum(members) == quorum


def test_default_quorum_is_a_majority_that_survives_one_lost_member() -> None:
    for n in range(1, 60):
        q = default_quorum(n)
        assert 2 * q > n
        assert n < 3 or q <= n - 1


def test_an_impossible_quorum_names_the_range() -> None:
    assert check_quorum(2, 3) == 2
    with pytest.raises(ConfigError, match=r"quorum 4 is impossible with 3 members; choose 1\.\.3"):
        check_quorum(4, 3)
    with pytest.raises(ConfigError, match="quorum 0"):
        check_quorum(0, 3)
