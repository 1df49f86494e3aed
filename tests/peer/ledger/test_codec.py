"""ABI codec, revert decoding and event decoding, checked against the compiled ABI and web3
(and the memory twin's copies of the ABI's errors, events and write signatures)."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak
from web3 import Web3

from peer.ledger import errors as E
from peer.ledger import memory
from peer.ledger.abi import ContractAbi
from peer.ledger.artifact import ContractArtifact
from peer.ledger.events import EVENT_TYPES, EventDecoder, UpdateSubmitted, snake_case
from tests.peer.ledger.conftest import cid_of

MEMBER = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@pytest.fixture(scope="module")
def abi(artifact: ContractArtifact) -> ContractAbi:
    return ContractAbi(artifact.abi)


def test_every_contract_error_has_its_own_exception(abi: ContractAbi) -> None:
    names = {err.name for err in abi.errors.values()}
    assert names == set(E.CUSTOM_ERRORS), "errors.py and the contract's custom errors differ"
    for name, cls in E.CUSTOM_ERRORS.items():
        assert cls.__name__ == name and issubclass(cls, E.ContractRevert)
        assert cls.hint and cls.hint != E.ContractRevert.hint


def test_every_contract_event_has_a_record(abi: ContractAbi) -> None:
    assert {ev.name for ev in abi.events.values()} == set(EVENT_TYPES)
    EventDecoder(abi)  # raises if a record's fields differ from the event's parameters


def test_revert_data_maps_to_named_exceptions(abi: ContractAbi) -> None:
    data = keccak(text="NotMember(address)")[:4] + abi_encode(["address"], [MEMBER])
    exc = E.decode_revert(abi, data, "submitUpdate(1, 1, ...)")
    assert type(exc) is E.NotMember and exc.args_by_name == {"account": MEMBER}
    assert "submitUpdate" in str(exc) and MEMBER in str(exc)

    data = keccak(text="WrongRound(uint32,uint32)")[:4] + abi_encode(["uint32", "uint32"], [4, 5])
    exc = E.decode_revert(abi, data, "ctx")
    assert type(exc) is E.WrongRound and exc.args_by_name == {"expected": 4, "given": 5}

    exc = E.decode_revert(abi, keccak(text="AlreadySubmitted()")[:4], "ctx")
    assert type(exc) is E.AlreadySubmitted and exc.args_by_name == {}


def test_unknown_and_builtin_reverts(abi: ContractAbi) -> None:
    unknown = E.decode_revert(abi, bytes.fromhex("deadbeef") + bytes(32), "ctx")
    assert type(unknown) is E.ContractRevert and "0xdeadbeef" in str(unknown)
    reason = E.decode_revert(abi, bytes.fromhex("08c379a0") + abi_encode(["string"], ["no"]), "ctx")
    assert type(reason) is E.RevertReason and reason.args_by_name == {"reason": "no"}
    panic = E.decode_revert(abi, bytes.fromhex("4e487b71") + abi_encode(["uint256"], [0x11]), "ctx")
    assert type(panic) is E.Panic and panic.args_by_name == {"code": "0x11"}
    truncated = keccak(text="WrongRound(uint32,uint32)")[:4] + bytes(10)
    assert type(E.decode_revert(abi, truncated, "ctx")) is E.ContractRevert


def test_call_encoding_matches_web3(abi: ContractAbi, artifact: ContractArtifact) -> None:
    contract = Web3().eth.contract(abi=list(artifact.abi))
    cases = [
        ("submitUpdate", [7, 3, cid_of(b"x"), 12, 3_140]),
        ("attestAggregate", [1, 2, cid_of(b"y"), b"\x05" * 32]),
        ("claimContribution", [1, 2, 99, [b"\x01" * 32, b"\x02" * 32]]),
        ("propose", [0, MEMBER, "12D3KooWPeer", b"\x00" * 32, b"\x09" * 32]),
    ]
    for name, args in cases:
        assert "0x" + abi.encode_call(name, args).hex() == contract.encode_abi(name, args)


def test_logs_decode_into_records(abi: ContractAbi) -> None:
    decoder = EventDecoder(abi)
    cid = cid_of(b"update")
    log = {
        "topics": [
            "0x" + decoder.topic(UpdateSubmitted).hex(),
            "0x" + (9).to_bytes(32, "big").hex(),
            "0x" + (2).to_bytes(32, "big").hex(),
            "0x" + bytes(12).hex() + MEMBER[2:].lower(),
        ],
        "data": "0x"
        + abi_encode(["bytes32", "bytes", "uint64", "uint32"], [cid[4:], cid, 42, 1]).hex(),
        "blockNumber": "0x10",
        "logIndex": "0x3",
        "transactionHash": "0x" + "ab" * 32,
    }
    ev = decoder.decode(log)
    assert ev == UpdateSubmitted(
        task_id=9,
        round=2,
        member=MEMBER,
        digest=cid[4:],
        cid=cid,
        num_samples=42,
        index=1,
        block_number=16,
        log_index=3,
        tx_hash="0x" + "ab" * 32,
    )
    assert decoder.decode({**log, "topics": ["0x" + "00" * 32]}) is None


def test_the_memory_twin_mirrors_the_abi(abi: ContractAbi) -> None:
    """The twin's tables of errors, events and write signatures are the contract's own."""
    errors = {
        e.name: tuple(zip(e.input_names, e.input_types, strict=True)) for e in abi.errors.values()
    }
    assert errors == memory.ERROR_SIGNATURES
    for err in abi.errors.values():
        exc = memory.revert(err.name, "ctx", *[_sample(t) for t in err.input_types])
        assert type(exc) is E.CUSTOM_ERRORS[err.name] and exc.data[:4] == err.selector
        assert type(E.decode_revert(abi, exc.data, "ctx")) is type(exc)
        assert E.decode_revert(abi, exc.data, "ctx").args_by_name == exc.args_by_name
    for kind, indexed in memory.INDEXED.items():
        ev = abi.events_by_name[kind.__name__]
        names = tuple(snake_case(n) for n, i in zip(ev.names, ev.indexed, strict=True) if i)
        assert names == indexed, kind.__name__
    assert set(memory.INDEXED) == set(EVENT_TYPES.values())
    for name, types in memory.WRITE_TYPES.items():
        assert abi.function(name).input_types == types and abi.function(name).mutates
    assert abi.constructor_types == memory.CONSTRUCTOR_TYPES


def _sample(kind: str) -> object:
    return {"address": MEMBER, "string": "why", "bytes32": b"\x07" * 32}.get(kind, 7)
