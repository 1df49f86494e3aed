"""The members' X25519 key registry (members-only weights), on every ledger backend."""

from __future__ import annotations

import pytest
from eth_account import Account

from peer.ledger import errors as E
from peer.ledger.abc import ZERO32
from peer.ledger.events import EncryptionKeySet
from peer.ledger.types import ProposalKind
from tests.peer.ledger.conftest import Backend, Fed

AUDIT = b"\xa0" * 32


def key(i: int) -> bytes:
    return bytes([i]) * 32


def keyed_fed(chain: Backend, n: int = 3) -> Fed:
    """A federation deployed with founders' keys 1..n and an audit key."""
    accounts = [Account.from_key(k) for k in chain.dev_private_keys(n + 3)]
    dep, members, outsiders = accounts[0], accounts[1 : 1 + n], accounts[1 + n :]
    peer_ids = [f"12D3KooWKeyed{i}" for i in range(n)]
    keys = [key(i + 1) for i in range(n)]
    deployer = chain.deploy(
        dep, [a.address for a in members], peer_ids, 5001, encryption_keys=keys, audit_key=AUDIT
    )
    clients = [chain.client(deployer.address, a) for a in members]
    return Fed(chain, deployer, clients, outsiders, peer_ids)


def test_founders_keys_and_audit_key_are_registered(chain: Backend) -> None:
    fed = keyed_fed(chain)
    d = fed.deployer
    assert d.audit_key() == AUDIT
    for i, m in enumerate(fed.members):
        assert d.encryption_key_of(m.account_address) == key(i + 1)
    assert d.encryption_key_of(fed.outsiders[0].address) == ZERO32
    found = [(e.account, e.key, e.proposal_id) for e in d.events(EncryptionKeySet)]
    assert found == [(m.account_address, key(i + 1), 0) for i, m in enumerate(fed.members)]


def test_a_federation_without_keys_reads_zeros(fed: Fed) -> None:
    assert fed.deployer.audit_key() == ZERO32
    assert fed.deployer.encryption_key_of(fed.members[0].account_address) == ZERO32
    assert fed.deployer.events(EncryptionKeySet) == []


@pytest.mark.parametrize(
    ("keys", "error"),
    [
        ([key(1), ZERO32], E.ZeroEncryptionKey),
        ([key(1), key(1)], E.EncryptionKeyTaken),
        ([key(1)], E.InvalidConfig),
    ],
)
def test_constructor_refuses_bad_keys(
    chain: Backend, keys: list[bytes], error: type[E.ContractRevert]
) -> None:
    deployer = Account.from_key(chain.dev_private_keys(1)[0])
    founders = [Account.from_key(i.to_bytes(32, "big")).address for i in (1, 2)]
    with pytest.raises(error):
        chain.deploy(deployer, founders, ["p1", "p2"], 5001, encryption_keys=keys, audit_key=AUDIT)


def test_admission_registers_the_proposed_key_and_removal_frees_it(chain: Backend) -> None:
    fed = keyed_fed(chain)
    a, b, c = fed.members
    newcomer = fed.outsiders[0].address
    with pytest.raises(E.ZeroEncryptionKey):
        a.propose(ProposalKind.ADMIT, newcomer, "12D3KooWNew")
    with pytest.raises(E.EncryptionKeyTaken) as taken:
        a.propose(ProposalKind.ADMIT, newcomer, "12D3KooWNew", ZERO32, key(2))
    assert taken.value.args_by_name["key"] == key(2)
    pid = a.propose(ProposalKind.ADMIT, newcomer, "12D3KooWNew", ZERO32, key(9))
    assert a.proposal(pid).encryption_key == key(9)
    assert a.encryption_key_of(newcomer) == ZERO32, "not before the vote passes"
    b.approve(pid)
    assert a.encryption_key_of(newcomer) == key(9)
    assert b.last_result is not None
    assert b.last_result.event(EncryptionKeySet).proposal_id == pid

    gone = c.account_address
    rid = a.propose(ProposalKind.REMOVE, gone)
    assert a.proposal(rid).encryption_key == ZERO32
    fed.client(fed.outsiders[0]).approve(rid)
    b.approve(rid)
    assert not a.is_member(gone)
    assert a.encryption_key_of(gone) == ZERO32
    # its key is free again: a later admission may register it
    pid2 = a.propose(ProposalKind.ADMIT, fed.outsiders[1].address, "12D3KooWNew2", ZERO32, key(3))
    assert a.proposal(pid2).encryption_key == key(3)


def test_a_member_rotates_its_own_key(chain: Backend) -> None:
    fed = keyed_fed(chain)
    a, b, _ = fed.members
    a.set_encryption_key(key(7))
    assert b.encryption_key_of(a.account_address) == key(7)
    assert a.last_result is not None
    ev = a.last_result.event(EncryptionKeySet)
    assert (ev.account, ev.key, ev.proposal_id) == (a.account_address, key(7), 0)
    with pytest.raises(E.ZeroEncryptionKey):
        a.set_encryption_key(ZERO32)
    with pytest.raises(E.EncryptionKeyTaken):
        a.set_encryption_key(key(2))
    # the old key is free for another member
    b.set_encryption_key(key(1))
    assert a.encryption_key_of(b.account_address) == key(1)
    with pytest.raises(E.NotMember):
        fed.client(fed.outsiders[0]).set_encryption_key(key(8))


def test_keys_are_optional_without_an_audit_key(fed: Fed) -> None:
    a, b, _ = fed.members
    newcomer = fed.outsiders[0].address
    pid = a.propose(ProposalKind.ADMIT, newcomer, "12D3KooWPlain", ZERO32, key(5))
    b.approve(pid)
    assert a.encryption_key_of(newcomer) == key(5)
    with pytest.raises(E.EncryptionKeyTaken):
        a.set_encryption_key(key(5))
