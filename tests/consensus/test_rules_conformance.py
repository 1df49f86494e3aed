"""One conformance suite over every registered aggregation rule and wrapper.

A new rule or wrapper is covered as soon as it is registered (a wrapper also needs its
parameters in ``WRAPPER_PARAMS``; the suite fails until it has them).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping

import pytest
import torch

from consensus.serialization import weights_to_bytes
from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.registry import RULES, WRAPPERS, build_rule
from consensus.task_spec import AggregationSpec, RuleSpec
from fedchain.errors import ProtocolError

WRAPPER_PARAMS: dict[str, list[dict[str, float]]] = {
    "norm-clip": [{"max_norm": 3.0}, {"median_multiple": 1.0}],
}
"""Parameters each wrapper is tested with (it has no defaults to build it bare)."""

N_UPDATES = 7
SHAPES = {"layer.weight": (100, 700), "layer.bias": (100,), "out.weight": (3, 100)}
"""Over 70k values, so that a thread-count-dependent reduction would show across processes."""


def _cases() -> dict[str, AggregationSpec]:
    """Every rule with its defaults, and every wrapper around fedavg and around median."""
    cases = {name: AggregationSpec(rule=name) for name in sorted(RULES)}
    for name in sorted(WRAPPERS):
        for params in WRAPPER_PARAMS.get(name, []):
            for inner in ("fedavg", "median"):
                label = ",".join(f"{k}={v}" for k, v in params.items())
                cases[f"{name}({label})+{inner}"] = AggregationSpec(
                    rule=inner, wrappers=(RuleSpec(name=name, params=params),)
                )
    return cases


CASES = _cases()
IDS = list(CASES)


def make_round(seed: int, n: int = N_UPDATES) -> tuple[list[Update], RoundContext]:
    """A round's inputs from a seed: the global model and n updates near it (float32)."""
    g = torch.Generator().manual_seed(seed)
    previous = {k: torch.randn(*s, generator=g) for k, s in SHAPES.items()}
    updates = [
        Update(
            member=f"0x{i:02x}",
            weights={
                k: (v + 0.01 * (i + 1) * torch.randn(*v.shape, generator=g)).contiguous()
                for k, v in previous.items()
            },
            num_samples=5 + 3 * i,
        )
        for i in range(n)
    ]
    return updates, RoundContext(round=3, previous=previous, seed=seed)


def result_digest(agg: Aggregate) -> str:
    h = hashlib.sha256(weights_to_bytes(agg.weights))
    if agg.state:
        h.update(weights_to_bytes(agg.state))
    h.update(json.dumps([agg.accepted, sorted(agg.scores.items())]).encode())
    return h.hexdigest()


def two_rounds(rule: AggregationRule, seed: int) -> Aggregate:
    """Round 1, then round 2 from round 1's weights and state (so state is exercised)."""
    ups, ctx = make_round(seed)
    first = rule.aggregate(ups, ctx)
    shift = [
        Update(
            u.member,
            {k: v + (first.weights[k] - ctx.previous[k]) for k, v in u.weights.items()},
            u.num_samples,
        )
        for u in ups
    ]
    return rule.aggregate(shift, RoundContext(4, first.weights, seed + 1, first.state))


def all_digests(seed: int) -> dict[str, str]:
    return {case: result_digest(two_rounds(build_rule(spec), seed)) for case, spec in CASES.items()}


_SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
from tests.consensus.test_rules_conformance import all_digests
print(json.dumps(all_digests(int(sys.argv[2]))))
"""


@pytest.fixture(scope="module")
def digests_by_process() -> list[dict[str, str]]:
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    outs = []
    for threads in ("1", "2"):
        env = {**os.environ, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}
        done = subprocess.run(
            [sys.executable, "-c", _SCRIPT, root, "11"],
            check=True,
            env=env,
            capture_output=True,
            text=True,
            cwd=root,
        )
        outs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return outs


def test_every_wrapper_has_test_parameters() -> None:
    assert set(WRAPPER_PARAMS) == set(WRAPPERS)


@pytest.mark.parametrize("case", IDS)
def test_bit_identical_across_processes(case, digests_by_process) -> None:
    one, two = digests_by_process
    assert one[case] == two[case]
    # and the same in this process
    assert result_digest(two_rounds(build_rule(CASES[case]), 11)) == one[case]


@pytest.mark.parametrize("case", IDS)
def test_output_shapes_names_and_repeatability(case) -> None:
    rule = build_rule(CASES[case])
    ups, ctx = make_round(1)
    a = rule.aggregate(ups, ctx)
    assert sorted(a.weights) == sorted(SHAPES)
    for k, t in a.weights.items():
        assert t.dtype == torch.float32 and t.is_contiguous() and tuple(t.shape) == SHAPES[k]
        assert bool(torch.isfinite(t).all())
    b = build_rule(CASES[case]).aggregate(ups, ctx)
    assert weights_to_bytes(a.weights) == weights_to_bytes(b.weights)
    assert weights_to_bytes(a.weights) == weights_to_bytes(rule.aggregate(ups, ctx).weights)
    assert a.scores == b.scores and a.accepted == b.accepted


@pytest.mark.parametrize("case", IDS)
def test_accepted_and_scores(case) -> None:
    ups, ctx = make_round(2)
    agg = build_rule(CASES[case]).aggregate(ups, ctx)
    members = [u.member for u in ups]
    assert set(agg.scores) == set(members)
    assert all(0.0 <= s <= 1.0 for s in agg.scores.values())
    assert agg.accepted == tuple(m for m in members if agg.scores[m] > 0)
    assert agg.accepted  # something is always used


def _same(update: Mapping[str, torch.Tensor], n: int) -> list[Update]:
    return [
        Update(f"0x{i:02x}", {k: v.clone() for k, v in update.items()}, 4 + i) for i in range(n)
    ]


@pytest.mark.parametrize("case", IDS)
def test_updates_equal_to_the_global_model_leave_it_unchanged(case) -> None:
    _, ctx = make_round(3)
    agg = build_rule(CASES[case]).aggregate(_same(ctx.previous, N_UPDATES), ctx)
    assert weights_to_bytes(agg.weights) == weights_to_bytes(ctx.previous)


@pytest.mark.parametrize("case", IDS)
def test_identical_updates_give_that_update(case) -> None:
    """Exact: every rule's arithmetic reproduces a float32 value it averages with itself.

    Server optimizers (state names) move by their own step instead: only the direction is checked.
    """
    rule = build_rule(CASES[case])
    ups, ctx = make_round(4)
    agg = rule.aggregate(_same(ups[0].weights, N_UPDATES), ctx)
    if rule.state_names(ctx.previous):
        for k in agg.weights:
            step = (agg.weights[k] - ctx.previous[k]).double()
            change = (ups[0].weights[k] - ctx.previous[k]).double()
            assert bool(((step * change) >= 0).all()) and bool((step != 0).any())
        return
    assert weights_to_bytes(agg.weights) == weights_to_bytes(ups[0].weights)
    assert agg.accepted  # at least one member credited


@pytest.mark.parametrize("case", IDS)
def test_refuses_an_empty_round(case) -> None:
    _, ctx = make_round(5)
    with pytest.raises(ProtocolError):
        build_rule(CASES[case]).aggregate([], ctx)


@pytest.mark.parametrize("case", IDS)
def test_state_has_the_declared_names_and_shapes(case) -> None:
    rule = build_rule(CASES[case])
    _, ctx = make_round(6)
    names = rule.state_names(ctx.previous)
    agg = two_rounds(rule, 6)
    assert sorted(agg.state) == sorted(names)
    for name, ref in names.items():
        got = agg.state[name]
        assert got.shape == ref.shape and got.dtype == ref.dtype == torch.float32
        assert got.is_contiguous()


def test_wrappers_pass_state_and_hooks_through() -> None:
    inner = AggregationSpec(rule="fedprox", params={"mu": 0.5})
    wrapped = AggregationSpec(
        rule="fedadam", wrappers=(RuleSpec(name="norm-clip", params={"max_norm": 1.0}),)
    )
    assert (
        build_rule(
            inner.model_copy(
                update={"wrappers": (RuleSpec(name="norm-clip", params={"max_norm": 1.0}),)}
            )
        )
        .client_hooks()
        .proximal_mu
        == 0.5
    )
    _, ctx = make_round(7)
    assert sorted(build_rule(wrapped).state_names(ctx.previous)) == sorted(
        build_rule(AggregationSpec(rule="fedadam")).state_names(ctx.previous)
    )
