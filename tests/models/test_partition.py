"""Partitioners assign every sample exactly once, and their skew knobs do what they say."""

from __future__ import annotations

import numpy as np
import pytest

from fedchain.errors import ConfigError
from models.partition import (
    DirichletLabelPartitioner,
    IIDPartitioner,
    NaturalPartitioner,
    QuantitySkewPartitioner,
    label_skew,
    modality_availability,
)

LABELS = np.repeat(np.arange(5), [300, 200, 250, 150, 100])


def _assert_exact_cover(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert joined.size == n
    np.testing.assert_array_equal(np.sort(joined), np.arange(n))
    for part in parts:
        assert np.all(np.diff(part) > 0)


@pytest.mark.parametrize(
    "partitioner",
    [
        IIDPartitioner(),
        DirichletLabelPartitioner(0.1),
        DirichletLabelPartitioner(1.0),
        DirichletLabelPartitioner(100.0),
        QuantitySkewPartitioner(0.5),
    ],
    ids=["iid", "dir0.1", "dir1", "dir100", "quantity"],
)
@pytest.mark.parametrize("k", [1, 3, 7])
def test_every_sample_assigned_exactly_once(partitioner, k):
    parts = partitioner.split(LABELS, k, seed=4)
    assert len(parts) == k
    _assert_exact_cover(parts, LABELS.size)


def test_partitions_are_reproducible_and_seed_dependent():
    p = DirichletLabelPartitioner(0.5)
    a, b, c = p.split(LABELS, 4, 1), p.split(LABELS, 4, 1), p.split(LABELS, 4, 2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c, strict=True))


def test_dirichlet_alpha_controls_label_skew():
    def mean_skew(alpha: float) -> float:
        p = DirichletLabelPartitioner(alpha)
        return float(np.mean([label_skew(LABELS, p.split(LABELS, 5, s)) for s in range(10)]))

    skews = [mean_skew(a) for a in (0.05, 0.5, 5.0, 500.0)]
    assert skews == sorted(skews, reverse=True)
    assert skews[0] > 0.5  # nearly one class per institution
    assert skews[-1] < 0.05  # practically IID
    iid = IIDPartitioner()
    assert np.mean([label_skew(LABELS, iid.split(LABELS, 5, s)) for s in range(10)]) < 0.05


def test_dirichlet_respects_min_size_or_explains():
    parts = DirichletLabelPartitioner(0.1, min_size=50).split(LABELS, 4, seed=0)
    assert min(p.size for p in parts) >= 50
    with pytest.raises(ConfigError, match="alpha"):
        DirichletLabelPartitioner(0.01, min_size=250, max_tries=5).split(LABELS, 4, seed=0)
    with pytest.raises(ConfigError):
        DirichletLabelPartitioner(0.0)


def test_quantity_skew_varies_sizes_but_not_labels():
    sizes_small = [
        np.std([p.size for p in QuantitySkewPartitioner(0.3).split(LABELS, 5, s)])
        for s in range(10)
    ]
    sizes_large = [
        np.std([p.size for p in QuantitySkewPartitioner(1000.0).split(LABELS, 5, s)])
        for s in range(10)
    ]
    assert np.mean(sizes_small) > 5 * np.mean(sizes_large)
    parts = QuantitySkewPartitioner(0.3, min_size=10).split(LABELS, 5, seed=3)
    assert min(p.size for p in parts) >= 10


def test_natural_partition_follows_groups():
    groups = np.array(["b", "a", "b", "c", "a", "c", "c"])
    parts = NaturalPartitioner(groups).split(np.zeros(7), 3, seed=0)
    assert [p.tolist() for p in parts] == [[1, 4], [0, 2], [3, 5, 6]]
    with pytest.raises(ConfigError, match="3 groups"):
        NaturalPartitioner(groups).split(np.zeros(7), 2, seed=0)


def test_iid_rejects_too_many_institutions():
    with pytest.raises(ConfigError):
        IIDPartitioner().split(np.zeros(3), 4, seed=0)


def test_modality_availability():
    insts = [f"inst{i}" for i in range(1, 7)]
    avail = modality_availability(insts, ["acc", "gyro"], {"gyro": 0.3}, seed=0)
    lacking = [i for i, mods in avail.items() if "gyro" not in mods]
    assert len(lacking) == 2  # round(0.3 * 6)
    assert all("acc" in mods for mods in avail.values())
    again = modality_availability(insts, ["acc", "gyro"], {"gyro": 0.3}, seed=0)
    assert again == avail
    with pytest.raises(ConfigError, match="no modality"):
        modality_availability(insts, ["acc", "gyro"], {"gyro": 1.0, "acc": 1.0}, seed=0)
    with pytest.raises(ConfigError, match="unknown"):
        modality_availability(insts, ["acc"], {"ecg": 0.5}, seed=0)
