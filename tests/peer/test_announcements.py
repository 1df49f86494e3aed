from __future__ import annotations

import json

import pytest
from eth_account import Account

from fedchain.errors import ProtocolError
from peer.announcements import Domain, parse_announcement, sign_update

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
DOMAIN = Domain(chain_id=31337, contract="0x" + "11" * 20)


def _signed(**kw: object) -> bytes:
    acct = Account.create()
    args = {"task_id": 1, "round_no": 2, "cid": CID, "num_samples": 200, **kw}
    return sign_update(acct, DOMAIN, **args).to_bytes()  # type: ignore[arg-type]


def test_valid_announcement_round_trips() -> None:
    ann = parse_announcement(_signed(), DOMAIN)
    assert (ann.round, ann.cid, ann.num_samples) == (2, CID, 200)


@pytest.mark.parametrize(
    "domain",
    [
        Domain(chain_id=1, contract=DOMAIN.contract),
        Domain(chain_id=31337, contract="0x" + "22" * 20),
    ],
)
def test_replay_on_other_chain_or_contract_fails(domain: Domain) -> None:
    with pytest.raises(ProtocolError, match="signed by"):
        parse_announcement(_signed(), domain)


def test_tampered_fields_fail() -> None:
    msg = json.loads(_signed())
    for field, value in (("round", 3), ("num_samples", 10**6), ("task_id", 2)):
        bad = {**msg, field: value}
        with pytest.raises(ProtocolError, match="signed by"):
            parse_announcement(json.dumps(bad).encode(), DOMAIN)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\x00\xff",
        b"[]",
        b'{"kind":"update"}',
        b"x" * 10_000,
        json.dumps({"kind": "update", "task_id": -1}).encode(),
    ],
)
def test_garbage_is_a_protocol_error(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_announcement(payload, DOMAIN)
