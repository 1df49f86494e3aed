"""The norm-clip wrapper bounds every change before the inner rule sees it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from consensus.strategies.abc import Aggregate, AggregationRule, RoundContext, Update
from consensus.strategies.clipping import NormClip
from consensus.strategies.fedavg import FedAvg
from consensus.strategies.kernels import deltas, l2_norm


class _Spy(AggregationRule):
    name = "spy"

    def __init__(self) -> None:
        self.seen: list[Update] = []

    def aggregate(self, updates: Sequence[Update], ctx: RoundContext) -> Aggregate:
        self.seen = list(updates)
        return FedAvg().aggregate(updates, ctx)


def _round() -> tuple[list[Update], RoundContext]:
    g = torch.Generator().manual_seed(0)
    prev = {"w": torch.randn(30, generator=g), "b": torch.randn(5, generator=g)}
    scales = [0.1, 0.5, 1.0, 5.0, 40.0]
    ups = [
        Update(f"m{i}", {k: v + s * torch.randn(*v.shape, generator=g) for k, v in prev.items()}, 7)
        for i, s in enumerate(scales)
    ]
    return ups, RoundContext(1, prev, 0)


def _norms(ups: Sequence[Update], ctx: RoundContext) -> list[float]:
    return [l2_norm(d) for d in deltas(ups, ctx.previous, sorted(ctx.previous))]


def test_max_norm_bounds_every_change() -> None:
    ups, ctx = _round()
    spy = _Spy()
    agg = NormClip(spy, max_norm=2.0).aggregate(ups, ctx)
    before = _norms(ups, ctx)
    after = _norms(spy.seen, ctx)
    for b, a, u, seen in zip(before, after, ups, spy.seen, strict=True):
        assert a <= 2.0 * (1 + 1e-6)
        if b <= 2.0:
            assert seen is u  # untouched
        else:
            assert abs(a - 2.0) < 1e-5
            assert abs(agg.scores[u.member] - 2.0 / b) < 1e-12
    assert _norms([Update("agg", agg.weights, 1)], ctx)[0] <= 2.0 * (1 + 1e-6)
    assert agg.accepted == tuple(u.member for u in ups)


def test_median_multiple_clips_above_the_median_norm() -> None:
    ups, ctx = _round()
    spy = _Spy()
    agg = NormClip(spy, median_multiple=1.0).aggregate(ups, ctx)
    before = _norms(ups, ctx)
    median = sorted(before)[2]
    for b, a, u in zip(before, _norms(spy.seen, ctx), ups, strict=True):
        assert a <= median * (1 + 1e-6)
        assert agg.scores[u.member] == (1.0 if b <= median else median / b)


def test_clipping_keeps_the_direction() -> None:
    ups, ctx = _round()
    spy = _Spy()
    NormClip(spy, max_norm=1.0).aggregate(ups, ctx)
    raw = deltas(ups, ctx.previous, sorted(ctx.previous))
    clipped = deltas(spy.seen, ctx.previous, sorted(ctx.previous))
    for r, c in zip(raw, clipped, strict=True):
        cosine = float(r @ c) / (l2_norm(r) * l2_norm(c))
        assert cosine > 1 - 1e-6
