"""Median, trimmed mean, Krum, Multi-Krum and the geometric median on known inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from consensus.strategies.abc import RoundContext, Update
from consensus.strategies.geometric_median import GeometricMedian
from consensus.strategies.krum import Krum, MultiKrum
from consensus.strategies.median import Median
from consensus.strategies.trimmed_mean import TrimmedMean
from fedchain.errors import ProtocolError

CTX = RoundContext(round=1, previous={}, seed=0)


def _random(seed: int, n: int) -> list[Update]:
    g = torch.Generator().manual_seed(seed)
    return [
        Update(
            f"m{i}", {"a": torch.randn(5, 7, generator=g), "b": torch.randn(3, generator=g)}, 3 + i
        )
        for i in range(n)
    ]


def _stack(ups: list[Update], key: str) -> np.ndarray:
    return np.stack([u.weights[key].numpy().astype(np.float64) for u in ups])


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_median_matches_numpy(n: int) -> None:
    ups = _random(n, n)
    got = Median().aggregate(ups, CTX).weights
    for key in ("a", "b"):
        expected = np.median(_stack(ups, key), axis=0).astype(np.float32)
        assert expected.tobytes() == got[key].numpy().tobytes()


@pytest.mark.parametrize(("n", "trim"), [(1, 0.2), (5, 0.2), (6, 0.2), (10, 0.25), (7, 0.0)])
def test_trimmed_mean_matches_numpy_sort_and_slice(n: int, trim: float) -> None:
    ups = _random(10 + n, n)
    got = TrimmedMean(trim=trim).aggregate(ups, CTX).weights
    k = int(np.floor(trim * n))
    for key in ("a", "b"):
        kept = np.sort(_stack(ups, key), axis=0)[k : n - k]
        acc = np.zeros(kept.shape[1:])
        for row in kept:
            acc = acc + row
        assert (acc / (n - 2 * k)).astype(np.float32).tobytes() == got[key].numpy().tobytes()


def test_median_scores_credit_the_middle_values() -> None:
    ups = [Update(f"m{i}", {"w": torch.tensor([float(i), float(-i)])}, 1) for i in range(5)]
    agg = Median().aggregate(ups, CTX)
    assert agg.weights["w"].tolist() == [2.0, -2.0]
    assert agg.scores == {"m0": 0.0, "m1": 0.0, "m2": 1.0, "m3": 0.0, "m4": 0.0}
    assert agg.accepted == ("m2",)


def test_trimmed_mean_scores_are_the_kept_fraction() -> None:
    # coordinate 0: m0 smallest; coordinate 1: m0 largest; m4 always trimmed on coordinate 0
    values = [[0.0, 9.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [9.0, 0.5]]
    ups = [Update(f"m{i}", {"w": torch.tensor(v)}, 1) for i, v in enumerate(values)]
    agg = TrimmedMean(trim=0.2).aggregate(ups, CTX)
    assert agg.weights["w"].tolist() == [2.0, 2.0]
    assert agg.scores == {"m0": 0.0, "m1": 1.0, "m2": 1.0, "m3": 1.0, "m4": 0.0}


def test_trimmed_mean_that_would_trim_everything_is_refused() -> None:
    from consensus.strategies.kernels import trimmed_mean

    with pytest.raises(ProtocolError, match="leaves none"):
        trimmed_mean([torch.zeros(2, dtype=torch.float64)] * 2, 1)


def _clustered_with_outliers(seed: int = 0) -> list[Update]:
    """7 updates near 0 (m0..m6) and 2 far outliers (x0, x1), interleaved in input order."""
    g = torch.Generator().manual_seed(seed)
    good = [Update(f"m{i}", {"w": 0.1 * torch.randn(20, generator=g)}, 10 + i) for i in range(7)]
    bad = [
        Update("x0", {"w": torch.full((20,), 50.0)}, 1000),
        Update("x1", {"w": -30.0 + 0.1 * torch.randn(20, generator=g)}, 1000),
    ]
    return [good[0], bad[0], *good[1:4], bad[1], *good[4:]]


def test_multi_krum_selects_the_outlier_free_set() -> None:
    ups = _clustered_with_outliers()
    agg = MultiKrum(byzantine=2).aggregate(ups, CTX)
    assert set(agg.accepted) == {f"m{i}" for i in range(7)}  # keep defaults to n - f = 7
    assert agg.scores["x0"] == agg.scores["x1"] == 0.0
    good = [u for u in ups if u.member.startswith("m")]
    total = sum(u.num_samples for u in good)
    acc = np.zeros(20)
    for u in good:
        acc = acc + u.weights["w"].numpy().astype(np.float64) * float(u.num_samples)
    assert (acc / total).astype(np.float32).tobytes() == agg.weights["w"].numpy().tobytes()


def test_multi_krum_keep_and_krum_pick_clustered_updates() -> None:
    ups = _clustered_with_outliers(1)
    three = MultiKrum(byzantine=2, keep=3).aggregate(ups, CTX)
    assert len(three.accepted) == 3 and all(m.startswith("m") for m in three.accepted)
    one = Krum(byzantine=2).aggregate(ups, CTX)
    (chosen,) = one.accepted
    assert chosen.startswith("m")
    picked = next(u for u in ups if u.member == chosen)
    assert torch.equal(one.weights["w"], picked.weights["w"])
    assert chosen in three.accepted  # the best score is among the best three


def test_krum_ties_go_to_the_earlier_update() -> None:
    ups = [Update(f"m{i}", {"w": torch.zeros(3)}, 1) for i in range(5)]
    assert Krum(byzantine=1).aggregate(ups, CTX).accepted == ("m0",)


def test_krum_below_2f_plus_3_keeps_a_far_outlier_out_and_lowers_f_below_f_plus_3() -> None:
    g = torch.Generator().manual_seed(5)
    honest = [
        Update(f"h{i}", {"w": 1.0 + 0.05 * torch.randn(6, generator=g)}, 10) for i in range(3)
    ]
    scaled = Update("x", {"w": torch.full((6,), 100.0)}, 10)
    got = MultiKrum(byzantine=1).aggregate([honest[0], scaled, *honest[1:]], CTX)
    assert got.accepted == ("h0", "h1", "h2")  # 4 hospitals tolerating 1: n < 2f+3
    # n < f+3: f drops to n-3 for the round (here 1, so the outlier still stays out) ...
    lowered = MultiKrum(byzantine=2).aggregate([*honest, scaled], CTX)
    assert lowered.accepted == ("h0", "h1", "h2")
    # ... and with 3 updates left every one is averaged
    assert MultiKrum(byzantine=2).aggregate(honest, CTX).accepted == ("h0", "h1", "h2")


def test_geometric_median_is_robust_to_one_far_outlier() -> None:
    g = torch.Generator().manual_seed(3)
    good = [Update(f"m{i}", {"w": 1.0 + 0.05 * torch.randn(10, generator=g)}, 10) for i in range(6)]
    outlier = Update("x", {"w": torch.full((10,), 1e4)}, 10)
    ups = [*good[:3], outlier, *good[3:]]
    agg = GeometricMedian().aggregate(ups, CTX)
    assert float((agg.weights["w"] - 1.0).abs().max()) < 0.2
    mean_err = float((torch.stack([u.weights["w"] for u in ups]).mean(0) - 1.0).abs().max())
    assert mean_err > 1000  # the plain mean is dragged away
    assert agg.scores["x"] < 1e-3 < min(agg.scores[u.member] for u in good)
    assert max(agg.scores.values()) == 1.0


def test_geometric_median_weights_by_samples_only_when_asked() -> None:
    ups = [Update("a", {"w": torch.tensor([0.0])}, 1), Update("b", {"w": torch.tensor([1.0])}, 3)]
    agg = GeometricMedian(iterations=50, weighted=True).aggregate(ups, CTX)
    assert float(agg.weights["w"][0]) > 0.95  # the weighted geometric median is b
    three = [*ups, Update("c", {"w": torch.tensor([0.1])}, 1)]
    equal = GeometricMedian(iterations=50).aggregate(three, CTX)
    assert float(equal.weights["w"][0]) < 0.2  # one vote each: b's 3 samples do not count
