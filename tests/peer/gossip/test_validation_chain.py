"""The validator against a real Federation contract on Anvil (the production view)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account

from fedchain.localnet.chain_node import AnvilNode
from peer.announcements import Domain, RejectedAnnouncement, RejectReason, sign_update
from peer.gossip.peer_id import generate_ed25519_seed, peer_id_from_seed
from peer.gossip.validation import AnnouncementValidator, ChainMembership
from peer.ledger.client import FederationClient, connect, deploy

CID = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


@pytest.fixture(scope="module")
def anvil(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AnvilNode]:
    with AnvilNode(accounts=4, log_path=tmp_path_factory.mktemp("anvil") / "anvil.log") as node:
        yield node


def test_validator_checks_members_and_peer_ids_registered_in_the_contract(
    anvil: AnvilNode,
) -> None:
    deployer, member, outsider = (Account.from_key(k) for k in anvil.dev_private_keys(3))
    member_peer = peer_id_from_seed(generate_ed25519_seed())
    w3 = connect(anvil.rpc_url)
    client = deploy(w3, deployer, [member.address], [member_peer], 5001)
    # The validator gets a client (and connection) of its own, as the node should give it.
    view = ChainMembership(FederationClient(connect(anvil.rpc_url), client.address, member))
    domain = Domain(chain_id=client.chain_id, contract=client.address)
    validator = AnnouncementValidator(domain, 1, view)

    def announcement(signer: object, task: int = 1) -> bytes:
        ann = sign_update(signer, domain, task_id=task, round_no=1, cid=CID, num_samples=9)  # type: ignore[arg-type]
        return ann.to_bytes()

    assert validator(member_peer, announcement(member)).member == member.address
    refusals = {
        RejectReason.NON_MEMBER: (member_peer, announcement(outsider)),
        RejectReason.WRONG_PEER_ID: (
            peer_id_from_seed(generate_ed25519_seed()),
            announcement(member),
        ),
    }
    for reason, (sender, data) in refusals.items():
        with pytest.raises(RejectedAnnouncement) as refused:
            validator(sender, data)
        assert refused.value.reason is reason
    assert view.block_number() == int(w3.eth.block_number) > 0
