"""What only the memory twin has: its clock, its blocks, plain-address accounts and threads.

The contract's rules are checked by the conformance suite (the other files, on all backends);
these tests cover the twin's own promises to the simulator and to unit tests.
"""

from __future__ import annotations

import inspect
import threading

import pytest
from eth_account import Account

from peer.ledger import errors as E
from peer.ledger.abc import FederationLedger
from peer.ledger.client import FederationClient
from peer.ledger.events import UpdateSubmitted
from peer.ledger.memory import MemoryChain, MemoryFederation
from tests.peer.ledger.conftest import HOUR, MAX_SAMPLES, ManualClock, cid_of

T0 = 1_800_000_000
MEMBERS = [Account.from_key((i + 1).to_bytes(32, "big")) for i in range(4)]


def _federation(clock: ManualClock) -> tuple[MemoryChain, list[MemoryFederation]]:
    chain = MemoryChain(clock)
    chain.deploy("0x" + "ab" * 20, [m.address for m in MEMBERS], [f"p{i}" for i in range(4)], 5001)
    return chain, [chain.client(m) for m in MEMBERS]


def _task(member: FederationLedger, quorum: int = 3) -> int:
    return member.create_task(cid_of(b"s"), cid_of(b"m"), quorum, HOUR, HOUR, 50, MAX_SAMPLES)


def test_block_time_comes_from_the_clock_and_never_goes_back() -> None:
    clock = ManualClock(T0)
    chain, (a, b, *_) = _federation(clock)
    assert isinstance(a, FederationLedger) and chain.block_number() == 1
    task = _task(a)
    assert chain.block_timestamp() == T0 and a.round_info(task, 1).submit_deadline == T0 + HOUR
    clock.advance(10.7)
    first = a.submit_update(task, 1, cid_of(b"u0"), 5)
    assert chain.block_timestamp(first.block_number) == T0 + 10  # int(now())
    clock.t = T0  # a clock that steps back does not move block time back
    second = b.submit_update(task, 1, cid_of(b"u1"), 5)
    assert chain.block_timestamp(second.block_number) == T0 + 10
    assert second.block_number == first.block_number + 1 and second.gas_used == 0
    with pytest.raises(E.AlreadySubmitted):
        b.submit_update(task, 1, cid_of(b"u1"), 5)
    assert chain.block_number() == second.block_number, "a refused write mines nothing"
    clock.advance(HOUR + 1)
    assert chain.mine() == T0 + HOUR + 1 and chain.block_number() == second.block_number + 1
    with pytest.raises(E.SubmissionDeadlinePassed):
        MemoryFederation(chain, a.address, MEMBERS[2]).submit_update(task, 1, cid_of(b"x"), 1)


def test_handles_need_a_federation_and_take_plain_addresses() -> None:
    chain = MemoryChain(ManualClock(T0))
    with pytest.raises(E.NotAFederation):
        chain.client(MEMBERS[0])
    _, (a, *_) = _federation(ManualClock(T0))
    with pytest.raises(E.NotAFederation, match="no Federation contract at"):
        chain.client(MEMBERS[0], a.address)
    chain2, _ = _federation(ManualClock(T0))
    by_address = chain2.client(MEMBERS[0].address.lower())
    assert by_address.account_address == MEMBERS[0].address
    assert _task(by_address) == 1
    assert by_address.events(UpdateSubmitted) == []


def test_the_same_writes_give_the_same_hashes_and_addresses() -> None:
    runs = []
    for _ in range(2):
        _chain, (a, *_) = _federation(ManualClock(T0))
        runs.append((a.address, a.submit_update(_task(a), 1, cid_of(b"u"), 1).tx_hash))
    assert runs[0] == runs[1]


def test_threads_share_one_chain() -> None:
    """Four members submit to 25 tasks each from their own thread: nothing lost or doubled."""
    chain, members = _federation(ManualClock(T0))
    tasks = [_task(members[0]) for _ in range(25)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            for task in tasks:
                members[i].submit_update(task, 1, cid_of(f"{task}/{i}".encode()), 1 + i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(members))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    reader = members[0]
    for task in tasks:
        subs = reader.submissions(task, 1)
        assert sorted(s.num_samples for s in subs) == [1, 2, 3, 4]
        assert [e.index for e in reader.events(UpdateSubmitted, task, 1)] == [0, 1, 2, 3]
    hashes = {e.tx_hash for e in reader.events(UpdateSubmitted)}
    assert len(hashes) == 100 and chain.block_number() == 1 + 25 + 100


def test_client_and_twin_share_the_interface() -> None:
    """Every public method of the client is in the interface, with the same signature in both."""
    public = {
        n
        for n in dir(FederationClient)
        if not n.startswith("_") and inspect.isfunction(getattr(FederationClient, n))
    }
    assert public <= set(dir(FederationLedger)), public - set(dir(FederationLedger))
    for name in public:
        want = inspect.signature(getattr(FederationLedger, name))
        for impl in (FederationClient, MemoryFederation):
            got = inspect.signature(getattr(impl, name))
            assert list(got.parameters) == list(want.parameters), (impl.__name__, name)
            assert got.return_annotation == want.return_annotation, (impl.__name__, name)
    assert not getattr(MemoryFederation, "__abstractmethods__", None)
