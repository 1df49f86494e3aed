"""The peer node on in-memory backends: whole rounds, crashes, lost gossip, bad content,
members admitted and removed mid-task.  Every test drives real PeerNode objects through
:class:`fedchain.simulator.federation.VirtualFederation` (one process, a virtual clock)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import load as st_load

from consensus.protocol import RoundStatus
from consensus.task_spec import TaskSpec
from fedchain.errors import ServiceUnavailableError
from fedchain.simulator.federation import TaskTiming, VirtualFederation
from peer.content.cid import cid_from_bytes
from peer.node import MemberRemoved, StepOutcome
from peer.records import History
from peer.round_state import StateDict

NAMES = ("a", "b", "c", "d")


class TinyLearner:
    """A deterministic stand-in for local training: a nudge towards the member's own target."""

    def __init__(self, name: str, samples: int = 10) -> None:
        h = hashlib.sha256(name.encode()).digest()
        self._target = torch.tensor([b / 255 for b in h[:4]], dtype=torch.float32)
        self.num_samples = samples

    def reference_weights(self) -> StateDict:
        return {"w": torch.zeros(4), "b": torch.zeros(1)}

    def train(self, global_weights: Mapping[str, torch.Tensor], round_no: int) -> StateDict:
        w = global_weights["w"] + 0.5 * (self._target - global_weights["w"])
        return {"w": w.contiguous(), "b": (global_weights["b"] + round_no).contiguous()}

    def evaluate(self, weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        return {"accuracy": float(1.0 - (weights["w"] - self._target).abs().mean())}

    def plan_privacy(self, planned_rounds: int) -> None:
        return None


def tiny_spec(aggregation: str = "multi-krum") -> TaskSpec:
    return TaskSpec.model_validate(
        {
            "name": "tiny",
            "task": "heart",
            "model": {"arch": "logreg", "kwargs": {"in_features": 4}},
            "training": {"epochs": 1, "lr": 0.1, "batch_size": 4, "seed": 0},
            "aggregation": aggregation,
        }
    )


def federation(
    tmp_path: Path,
    names: tuple[str, ...] = NAMES,
    *,
    rounds: int = 2,
    gossip: bool = True,
    rule: str = "multi-krum",
) -> VirtualFederation:
    fed = VirtualFederation(
        tmp_path,
        tiny_spec(rule),
        {n: TinyLearner(n) for n in names},
        TinyLearner("init").reference_weights(),
        TaskTiming(rounds=rounds),
        gossip=gossip,
    )
    fed.start_all()
    return fed


def aggregates(fed: VirtualFederation) -> list[str]:
    task = fed.deployer.task(fed.task_id)
    out = []
    for r in range(1, task.current_round + 1):
        if fed.deployer.round_info(fed.task_id, r).status is RoundStatus.FINALIZED:
            out.append(cid_from_bytes(fed.deployer.finalized_event(fed.task_id, r).aggregate_cid))
    return out


def history(fed: VirtualFederation, name: str) -> dict[int, dict[str, object]]:
    return {int(e["round"]): e for e in History(fed.peers[name].state_dir).entries()}


def test_rounds_finalize_with_one_agreed_aggregate(tmp_path: Path) -> None:
    fed = federation(tmp_path)
    fed.run()
    assert fed.task_complete()
    assert len(aggregates(fed)) == 2
    for name in NAMES:
        h = history(fed, name)
        assert sorted(h) == [1, 2]
        assert h[2]["gossip"]["accepted"] == 2 * (len(NAMES) - 1)  # every announcement arrived
        for r, agreed_cid in zip((1, 2), aggregates(fed), strict=True):
            # A member whose attestation was not needed any more (quorum 3 of 4) records none.
            assert h[r]["aggregate_cid"] in (agreed_cid, None)
            assert h[r]["agreed"] is (h[r]["aggregate_cid"] is not None)
            assert h[r]["claimed"] is True and not h[r]["left_out"] and "local_test" in h[r]


def test_same_inputs_give_the_same_aggregates(tmp_path: Path) -> None:
    a = federation(tmp_path / "1")
    a.run()
    b = federation(tmp_path / "2")
    b.run()
    assert aggregates(a) == aggregates(b)


def test_aggregate_does_not_depend_on_transaction_order(tmp_path: Path) -> None:
    forward = federation(tmp_path / "fwd", NAMES)
    forward.run()
    backward = federation(tmp_path / "bwd", tuple(reversed(NAMES)))
    backward.run()
    order = [s.member for s in forward.deployer.submissions(forward.task_id, 1)]
    assert [s.member for s in backward.deployer.submissions(backward.task_id, 1)] == order[::-1]
    assert aggregates(forward) == aggregates(backward)


def _steps_of_a(tmp_path: Path) -> int:
    fed = federation(tmp_path)
    steps = 0
    while fed.running():
        acted = False
        for peer in fed.running():
            outcome = fed.step_peer(peer.name)
            steps += peer.name == "a"
            acted |= outcome is StepOutcome.ACTED
        if not acted:
            fed.advance()
    return steps


def test_crash_between_any_two_steps_then_restart(tmp_path: Path) -> None:
    reference = federation(tmp_path / "ref")
    reference.run()
    expected = aggregates(reference)
    total = _steps_of_a(tmp_path / "count")
    assert total >= 4
    for crash_after in range(1, total):
        fed = federation(tmp_path / f"crash{crash_after}")
        steps = 0
        while fed.running():
            acted = False
            for peer in fed.running():
                outcome = fed.step_peer(peer.name)
                acted |= outcome is StepOutcome.ACTED
                if peer.name == "a":
                    steps += 1
                    if steps == crash_after:
                        fed.crash("a")
                        fed.start("a")  # a fresh node on the same state folder and backends
            if not acted:
                fed.advance()
        assert aggregates(fed) == expected, f"crash after step {crash_after}"
        assert sorted(history(fed, "a")) == [1, 2], f"crash after step {crash_after}"


def test_fedadam_state_rides_in_the_aggregate_and_survives_every_peer_restarting(
    tmp_path: Path,
) -> None:
    reference = federation(tmp_path / "ref", rounds=3, rule="fedadam")
    reference.run()
    expected = aggregates(reference)
    fed = federation(tmp_path / "restart", rounds=3, rule="fedadam")
    fed.run(until=lambda: fed.deployer.task(fed.task_id).finalized_rounds >= 1)
    for name in NAMES:  # every node loses its memory; only the chain and content remain
        fed.crash(name)
        fed.start(name)
    fed.run()
    assert aggregates(fed) == expected
    content = fed.peers["a"].content
    last = st_load(content.get(expected[-1], timeout=1.0))
    assert sorted(last) == ["b", "rule_state/m/b", "rule_state/m/w", "rule_state/v/b",
                            "rule_state/v/w", "w"]  # fmt: skip
    assert bool(last["rule_state/v/w"].abs().sum() > 0)
    first = st_load(content.get(expected[0], timeout=1.0))
    assert not torch.equal(first["rule_state/m/w"], last["rule_state/m/w"])  # carried forward


def test_rounds_finalize_when_every_gossip_message_is_lost(tmp_path: Path) -> None:
    fed = federation(tmp_path)
    assert fed.gossip_net is not None
    fed.gossip_net.drop_all(True)
    fed.run()
    assert fed.task_complete()
    reference = federation(tmp_path / "ref", gossip=False)
    reference.run()
    assert aggregates(fed) == aggregates(reference)


def test_update_whose_bytes_do_not_match_its_digest_is_left_out(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=1)
    # Let "d" submit, then make its update's bytes on the network corrupt.
    fed.step_peer("d")
    digest, _ = fed.deployer.submission_of(fed.task_id, 1, fed.peers["d"].identity.address)
    assert digest != bytes(32)
    (sub,) = fed.deployer.submissions(fed.task_id, 1)
    fed.content_net.plant("d", cid_from_bytes(sub.cid), b"not the update")
    fed.run()
    d = fed.peers["d"].identity.address
    for name in ("a", "b", "c"):
        entry = history(fed, name)[1]
        assert d in entry["left_out"], entry
        assert "does not hash to it" in str(entry["left_out"][d])


def test_member_admitted_mid_task_joins_the_next_round(tmp_path: Path) -> None:
    fed = federation(tmp_path, ("a", "b", "c"), rounds=2)
    fed.step_all()  # round 1 is open and under way
    fed.admit("d", TinyLearner("d"))
    fed.start("d")
    fed.run()
    d = fed.peers["d"].identity.address
    members_of = {r: {s.member for s in fed.deployer.submissions(fed.task_id, r)} for r in (1, 2)}
    assert d not in members_of[1]
    assert d in members_of[2]
    assert history(fed, "d")[2]["claimed"] is True


def test_member_removed_mid_task_stops_with_a_clear_error(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=3)
    fed.run(until=lambda: fed.deployer.task(fed.task_id).last_finalized_round >= 1)
    fed.remove("d")
    fed.run()
    assert fed.task_complete()
    error = fed.peers["d"].error
    assert isinstance(error, MemberRemoved)
    assert "no longer a member" in str(error)
    assert all(fed.peers[n].done for n in ("a", "b", "c"))


def test_virtual_time_only_moves_when_every_node_waits(tmp_path: Path) -> None:
    fed = federation(tmp_path, rounds=1)
    start = fed.clock.now()
    fed.run()
    # Every member submits, so the set closes at once: no deadline was waited for.
    assert fed.clock.now() == start


def test_run_loops_steps_until_the_task_is_complete(tmp_path: Path) -> None:
    fed = federation(tmp_path, ("solo",), rounds=2)
    node = fed.peers["solo"].node
    assert node is not None
    assert node.run() == 0
    assert fed.task_complete()
    assert sorted(history(fed, "solo")) == [1, 2]


def test_an_outage_while_finishing_a_round_is_retried_not_lost(tmp_path: Path) -> None:
    """The chain moves on while node a's service is down: the next pass finishes the round."""
    fed = federation(tmp_path)
    node = fed.peers["a"].node
    assert node is not None
    finish = node._finish_round
    outages: list[int] = []

    def down_once(round_no: int, **kwargs: bool) -> None:
        if not outages:
            outages.append(round_no)
            raise ServiceUnavailableError("own Kubo at /memory/a does not answer")
        finish(round_no, **kwargs)

    node._finish_round = down_once  # type: ignore[method-assign]
    while fed.running():
        acted = False
        for peer in fed.running():
            if peer.name == "a":
                try:  # what run()'s outage guard does: log, retry on the next pass
                    outcome: StepOutcome | None = node.step()
                except ServiceUnavailableError:
                    outcome = StepOutcome.ACTED
                if outcome is StepOutcome.DONE:
                    peer.done = True
                    node.close()
            else:
                outcome = fed.step_peer(peer.name)
            acted |= outcome is not StepOutcome.WAITING
        if not acted:
            fed.advance()
    assert outages == [1]
    assert sorted(history(fed, "a")) == [1, 2]


def test_every_step_of_a_round_is_timed(tmp_path: Path) -> None:
    """What ``scripts/bench/round`` breaks a round into: each step a duration, none missing."""
    fed = federation(tmp_path, rule="fedavg")
    fed.run()
    steps = {
        "fetch_model", "train", "encode", "add", "submit", "wait_close", "fetch_updates",
        "aggregate", "add_aggregate", "attest", "wait_final", "round", "overhead",
    }  # fmt: skip
    attested = 0
    for name in NAMES:
        for entry in history(fed, name).values():
            seconds = entry["seconds"]
            assert isinstance(seconds, dict)
            if entry["aggregate_cid"] is None:  # attestation not needed any more: no attest step
                assert steps - set(seconds) <= {"fetch_updates", "aggregate", "add_aggregate",
                                                "attest", "wait_final"}  # fmt: skip
                continue
            attested += 1
            assert set(seconds) == steps
            assert all(v >= 0 for k, v in seconds.items() if k != "overhead")
    assert attested >= 3 * 2  # quorum 3 of 4, two rounds


def test_a_wait_ends_at_an_announcement_so_the_chain_is_read_again_at_once(
    tmp_path: Path,
) -> None:
    fed = federation(tmp_path)
    for name in ("a", "c"):  # each trains, submits and announces its update
        node = fed.peers[name].node
        assert node is not None and node.step() is StepOutcome.ACTED
    b = fed.peers["b"]
    assert b.node is not None and b.gossip is not None
    b.node._wait(5.0)
    # the first announcement ended the wait; the second is still there for the next pass
    assert b.gossip.receive(timeout=0.0) is not None
    assert b.gossip.receive(timeout=0.0) is None
