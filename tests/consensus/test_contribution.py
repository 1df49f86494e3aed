"""Credit from the round's updates alone: useful updates earn their samples, the rest nothing."""

from __future__ import annotations

import torch

from consensus.checks import change_norm_outliers
from consensus.contribution import contribution_credits
from consensus.round_decision import RoundInputs, decide_round
from consensus.strategies.abc import Aggregate, RoundContext, Update
from consensus.strategies.fedavg import FedAvg
from consensus.task_spec import (
    DEFAULT_RULE,
    AggregationSpec,
    ModelSpec,
    TaskSpec,
    TrainingSettings,
)

PREVIOUS = {"w": torch.zeros(3, 4), "b": torch.zeros(3)}


def _honest(seed: int, n: int) -> Update:
    g = torch.Generator().manual_seed(seed)
    direction = {"w": torch.ones(3, 4), "b": torch.ones(3)}
    return Update(
        f"h{seed}",
        {k: 0.1 * v + 0.02 * torch.randn(v.shape, generator=g) for k, v in direction.items()},
        n,
    )


def _spec(**kw: object) -> TaskSpec:
    return TaskSpec(
        name="t",
        task="heart",
        model=ModelSpec(arch="logreg"),
        training=TrainingSettings(epochs=1, lr=0.1, batch_size=4),
        **kw,  # type: ignore[arg-type]
    )


def _credits(updates: list[Update], aggregate: Aggregate) -> dict[str, int]:
    got = contribution_credits(
        updates, PREVIOUS, aggregate, norm_band=4.0, min_alignment=0.0, min_progress=0.3
    )
    return {c.member: c.score for c in got}


def _fedavg(updates: list[Update]) -> Aggregate:
    return FedAvg().aggregate(updates, RoundContext(round=1, previous=PREVIOUS, seed=0))


def test_honest_members_earn_their_samples() -> None:
    ups = [_honest(i, 10 * (i + 1)) for i in range(4)]
    assert _credits(ups, _fedavg(ups)) == {"h0": 10, "h1": 20, "h2": 30, "h3": 40}


def test_sign_flip_scaling_and_near_free_ride_earn_nothing() -> None:
    honest = [_honest(i, 50) for i in range(3)]
    flip = Update("flip", {k: -v for k, v in honest[0].weights.items()}, 50)
    scaled = Update("scaled", {k: 100 * v for k, v in honest[1].weights.items()}, 50)
    tiny = Update("tiny", {k: 1e-4 * v for k, v in honest[2].weights.items()}, 50)
    ups = [*honest, flip, scaled, tiny]
    # the reference aggregate is the honest one (as a robust rule would give)
    agg = Aggregate(
        _fedavg(honest).weights,
        tuple(u.member for u in ups),
        dict.fromkeys([u.member for u in ups], 1.0),
    )
    credits = {
        c.member: c
        for c in contribution_credits(
            ups, PREVIOUS, agg, norm_band=4.0, min_alignment=0.0, min_progress=0.3
        )
    }
    assert [credits[m].score for m in ("h0", "h1", "h2")] == [50, 50, 50]
    assert credits["flip"].score == 0 and "points away" in str(credits["flip"].reason)
    assert credits["scaled"].score == 0 and "median" in str(credits["scaled"].reason)
    assert credits["tiny"].score == 0 and "1/" in str(credits["tiny"].reason)


def test_an_update_the_rule_did_not_use_earns_nothing() -> None:
    ups = [_honest(i, 20) for i in range(3)]
    agg = _fedavg(ups)
    agg = Aggregate(agg.weights, ("h0", "h1"), {"h0": 1.0, "h1": 1.0, "h2": 0.0})
    assert _credits(ups, agg) == {"h0": 20, "h1": 20, "h2": 0}


def test_norm_bound_leaves_out_the_scaled_update_before_aggregation() -> None:
    honest = [_honest(i, 30) for i in range(3)]
    scaled = Update("scaled", {k: 100 * v for k, v in honest[0].weights.items()}, 30)
    ups = [*honest, scaled]
    out = change_norm_outliers(ups, PREVIOUS, 3.0)
    assert list(out) == ["scaled"] and "max_update_norm_ratio" in out["scaled"]
    digests = {u.member: bytes([i]) * 32 for i, u in enumerate(ups)}
    inputs = RoundInputs(task_id=1, round=2, model_digest=b"\x07" * 32, previous=PREVIOUS)
    decided = decide_round(ups, digests, inputs, _spec(max_update_norm_ratio=3.0), FedAvg())
    assert list(decided.left_out) == ["scaled"]
    assert decided.aggregate.accepted == ("h0", "h1", "h2")
    assert decided.scores() == [("h0", 30), ("h1", 30), ("h2", 30)]
    expected = _fedavg(honest).weights
    assert all(torch.equal(decided.aggregate.weights[k], expected[k]) for k in expected)


def test_bare_rule_name_in_a_spec_is_read_as_the_rule() -> None:
    full = _spec(aggregation="fedavg")
    assert full.aggregation == AggregationSpec(rule="fedavg")
    short = full.to_bytes().replace(
        b'"aggregation":{"params":{},"rule":"fedavg","wrappers":[]}', b'"aggregation":"fedavg"'
    )
    assert short != full.to_bytes()
    assert TaskSpec.from_bytes(short) == full
    assert _spec().aggregation.rule == DEFAULT_RULE != "fedavg"


def test_a_round_whose_changes_cancel_out_pays_nobody() -> None:
    a = Update("a", {"w": torch.full((3, 4), 0.1), "b": torch.full((3,), 0.1)}, 40)
    b = Update("b", {"w": torch.full((3, 4), -0.1), "b": torch.full((3,), -0.09)}, 40)
    got = contribution_credits(
        [a, b], PREVIOUS, _fedavg([a, b]), norm_band=4.0, min_alignment=0.0, min_progress=0.3
    )
    assert [c.score for c in got] == [0, 0]
    assert all("did not move the model" in str(c.reason) for c in got)
