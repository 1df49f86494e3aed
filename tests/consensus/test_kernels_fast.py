"""The fast kernels give the very bits of their plain definitions (``math.fsum``, torch's sort).

Peers agree on aggregates by digest, so a faster kernel is only acceptable if no input can make
it differ from the definition an auditor reproduces; these inputs aim at the hard cases:
cancellation, huge dynamic range, subnormals, signed zeros, exact ties, halfway roundings.
"""

from __future__ import annotations

import math
import struct

import pytest
import torch

from consensus.strategies.kernels import (
    coordinate_median,
    fixed_sum,
    leave_one_out_medians,
    sorted_members,
)


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _cases() -> list[list[float]]:
    gen = torch.Generator().manual_seed(11)
    normal = torch.randn(100_000, generator=gen, dtype=torch.float64)
    spread = torch.ldexp(normal, torch.randint(-300, 300, (100_000,), generator=gen))
    tiny = torch.randn(1000, generator=gen, dtype=torch.float64) * 5e-324 * 1000
    return [
        [],
        [0.0],
        [-0.0, -0.0],
        [1.0, -1.0],
        [1e16, 1.0, -1e16],
        [1.0, 2.0**-53],  # exactly halfway: ties to even
        [1.0, 2.0**-53, 2.0**-106],  # just above halfway
        [2.0**-1074] * 7,  # subnormals only
        [1e300, 1e300, -1e300],
        [0.1] * 10,
        normal.tolist(),
        spread.tolist(),
        (spread * spread).tolist(),
        tiny.tolist(),
        [*normal[:1000].tolist(), *(-normal[:1000]).tolist()],  # exact cancellation to 0
    ]


@pytest.mark.parametrize("values", _cases())
def test_fixed_sum_is_bit_identical_to_fsum(values: list[float]) -> None:
    vector = torch.tensor(values, dtype=torch.float64)
    assert _bits(fixed_sum(vector)) == _bits(math.fsum(values))


@pytest.mark.parametrize("values", _cases()[-5:])
def test_fixed_sum_blocks_and_flushes_keep_the_bits(
    values: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny blocks and flushes exercise the paths a 10M-parameter model takes, on hard inputs.
    from consensus.strategies import kernels

    monkeypatch.setattr(kernels, "_SUM_BLOCK", 7)
    monkeypatch.setattr(kernels, "_SUM_FLUSH", 50)
    vector = torch.tensor(values, dtype=torch.float64)
    assert _bits(fixed_sum(vector)) == _bits(math.fsum(values))


def test_fixed_sum_leaves_non_finite_and_huge_inputs_to_fsum() -> None:
    assert math.isnan(fixed_sum(torch.tensor([1.0, math.nan], dtype=torch.float64)))
    assert fixed_sum(torch.tensor([math.inf, 1.0], dtype=torch.float64)) == math.inf
    with pytest.raises(OverflowError):
        fixed_sum(torch.tensor([1.7e308, 1.7e308], dtype=torch.float64))


def test_sorted_members_matches_torch_stable_sort() -> None:
    gen = torch.Generator().manual_seed(5)
    vectors = [torch.randn(5000, generator=gen, dtype=torch.float64) for _ in range(7)]
    vectors[3][:100] = vectors[1][:100]  # exact ties
    vectors[2][100:200] = -0.0
    vectors[4][100:200] = 0.0  # signed zeros compare equal: input order must decide
    expected = torch.sort(torch.stack(vectors), dim=0, stable=True).values
    got = sorted_members(vectors)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    assert got.numpy().tobytes() == expected.numpy().tobytes()


@pytest.mark.parametrize("n", [2, 3, 4, 5, 10])
def test_leave_one_out_medians_match_sorting_the_others_anew(n: int) -> None:
    gen = torch.Generator().manual_seed(n)
    vectors = [torch.randn(3000, generator=gen, dtype=torch.float64) for _ in range(n)]
    vectors[0][:50] = vectors[-1][:50]  # ties
    vectors[-1][50:100] = -0.0
    vectors[0][50:100] = 0.0
    got = leave_one_out_medians(vectors)
    for i in range(n):
        expected = coordinate_median([v for j, v in enumerate(vectors) if j != i])[0]
        assert got[i].numpy().tobytes() == expected.numpy().tobytes()


def _plain_weighted_mean(tensors: list[torch.Tensor], weights: list[float]) -> torch.Tensor:
    """The definition an auditor reproduces: one float64 temporary per step, members in order."""
    acc = torch.zeros_like(tensors[0], dtype=torch.float64)
    for t, w in zip(tensors, weights, strict=True):
        acc = acc + t.to(torch.float64) * float(w)
    return (acc / float(sum(weights))).to(torch.float32)


@pytest.mark.parametrize("size", [1, 7, (1 << 18) - 1, (1 << 18) + 3, 3 * (1 << 18) + 11])
def test_blocked_weighted_mean_gives_the_bits_of_the_plain_loop(size: int) -> None:
    from consensus.strategies.kernels import weighted_mean, weighted_mean_vector

    gen = torch.Generator().manual_seed(size)
    members = []
    for i in range(5):
        t = torch.randn(size, generator=gen) * torch.exp2(
            torch.randint(-40, 40, (size,), generator=gen).float()
        )
        t[:: 97 + i] = -0.0  # signed zeros must survive as in the plain loop
        members.append(t)
    weights = [120.0, 3.0, 77.0, 1.0, 999.0]
    expected = _plain_weighted_mean(members, weights)
    got = weighted_mean([{"w": m.reshape(1, -1)} for m in members], weights, ["w"])["w"]
    assert got.shape == (1, size)
    assert got.reshape(-1).numpy().tobytes() == expected.numpy().tobytes()
    vectors = [m.to(torch.float64) for m in members]
    plain_vector = sum(
        (v * w for v, w in zip(vectors, weights, strict=True)),
        torch.zeros(size, dtype=torch.float64),
    )
    plain_vector = plain_vector / float(sum(weights))
    assert (
        weighted_mean_vector(vectors, weights).numpy().tobytes() == plain_vector.numpy().tobytes()
    )


@pytest.mark.parametrize("n", [1, 2, 5, 6])
def test_member_ranks_median_is_the_coordinate_median(n: int) -> None:
    from consensus.strategies.kernels import MemberRanks

    gen = torch.Generator().manual_seed(n)
    vectors = [torch.randn(3000, generator=gen, dtype=torch.float64) for _ in range(n)]
    if n > 1:
        vectors[0][:50] = vectors[-1][:50]  # ties
        vectors[0][50:100] = -0.0
        vectors[-1][50:100] = 0.0
    expected = coordinate_median(vectors)[0]
    assert MemberRanks(vectors).median().numpy().tobytes() == expected.numpy().tobytes()


@pytest.mark.parametrize("values", _cases()[-5:])
def test_fixed_dot_and_squared_distance_are_fsum_of_the_elementwise_values(
    values: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    from consensus.strategies import kernels

    monkeypatch.setattr(kernels, "_SUM_BLOCK", 1000)
    a = torch.tensor(values, dtype=torch.float64)
    b = torch.flip(a, [0]) * 0.75
    pairs = [
        (kernels.fixed_dot, a * b),
        (kernels.squared_distance, (a - b) * (a - b)),
        (lambda x, _: kernels.squared_norm(x), a * a),
    ]
    for kernel, elementwise in pairs:
        try:
            expected = math.fsum(elementwise.tolist())
        except OverflowError:  # huge inputs: the kernel must refuse the same way
            with pytest.raises(OverflowError):
                kernel(a, b)
            continue
        assert _bits(kernel(a, b)) == _bits(expected)


def test_fixed_dot_of_non_finite_products_goes_to_fsum() -> None:
    from consensus.strategies.kernels import fixed_dot

    a = torch.tensor([1.0, 1e200, 2.0], dtype=torch.float64)
    assert fixed_dot(a, a) == math.inf
    assert math.isnan(fixed_dot(a, torch.tensor([1.0, math.nan, 1.0], dtype=torch.float64)))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_change_geometry_by_blocks_is_the_whole_vector_definition(
    n: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Credit's sums taken one block of coordinates at a time (blocks cut across tensors here)
    # must give the bits of the plain definition on whole vectors.
    from consensus.contribution import change_geometry
    from consensus.strategies import kernels
    from consensus.strategies.abc import Update

    monkeypatch.setattr(kernels, "CHANGE_BLOCK", 97)
    gen = torch.Generator().manual_seed(40 + n)
    previous = {"a": torch.randn(30, 11, generator=gen), "b": torch.randn(250, generator=gen),
                "c": torch.zeros(3)}  # fmt: skip
    updates = []
    for i in range(n):
        weights = {
            k: v + 0.01 * torch.randn(v.shape, generator=gen) ** 3 for k, v in previous.items()
        }
        weights["c"] = previous["c"].clone()  # a tensor nobody changed: zeros and ties
        updates.append(Update(f"m{i}", weights, 10 + i))
    keys = sorted(previous)
    changes = kernels.deltas(updates, previous, keys)
    got = change_geometry(updates, previous)
    assert [_bits(x) for x in got.norms] == [_bits(kernels.l2_norm(c)) for c in changes]
    assert _bits(got.median_norm) == _bits(kernels.l2_norm(coordinate_median(changes)[0]))
    if n == 1:
        assert got.others_norms == [] and got.dots == []
        return
    others = leave_one_out_medians(changes)
    assert [_bits(x) for x in got.others_norms] == [_bits(kernels.l2_norm(r)) for r in others]
    assert [_bits(x) for x in got.dots] == [
        _bits(fixed_sum(c * r)) for c, r in zip(changes, others, strict=True)
    ]


def test_pairwise_distances_by_blocks_are_the_whole_vector_definition(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from consensus.strategies import kernels
    from consensus.strategies.abc import Update

    monkeypatch.setattr(kernels, "CHANGE_BLOCK", 64)
    gen = torch.Generator().manual_seed(9)
    shapes = {"a": (17, 9), "b": (300,)}
    updates = [
        Update(f"m{i}", {k: torch.randn(s, generator=gen) * 10.0**i for k, s in shapes.items()}, 5)
        for i in range(5)
    ]
    keys = sorted(shapes)
    expected = kernels.pairwise_sq_distances(kernels.update_vectors(updates, keys))
    got = kernels.pairwise_sq_distances_by_blocks(kernels.weight_blocks(updates, keys), 5)
    assert [[_bits(x) for x in row] for row in got] == [[_bits(x) for x in row] for row in expected]
