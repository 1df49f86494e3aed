"""Numeric kernels shared by the aggregation rules, each bit-identical on every peer.

How determinism is reached, once for every rule that uses these:

* everything is float64, computed from the float32 inputs, and cast to float32 once at the end;
* only element-wise torch operations (``+ - * /``, ``sqrt``, comparisons) are used on data,
  which IEEE 754 rounds exactly per element, whatever the thread count or SIMD width;
* sums over members are explicit Python loops in the given (canonical) order;
* sums over coordinates (norms, distances) use :func:`math.fsum`, which is correctly rounded,
  so its result does not depend on any summation order at all;
* sorting along the member axis (a stable sort) is exact, ties by input order.

Three kernels take a faster route to the very same bits (checked against the plain definitions
in tests/consensus/test_kernels_fast.py): :func:`fixed_sum` sums exactly in integers read from
the IEEE 754 bits instead of calling ``math.fsum`` on a list of Python floats;
:func:`sorted_members` sorts with NumPy's stable sort, several times faster than torch's along
the member axis; :func:`weighted_mean` works block by block in place.

An auditor can reproduce each kernel with NumPy and ``math.fsum`` from these docstrings.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np
import torch

from consensus.strategies.abc import StateDict, Update
from fedchain.errors import ProtocolError

Vector = torch.Tensor
"""A whole model as one 1-D float64 tensor, tensors concatenated in sorted-key order."""


def check_updates(updates: Sequence[Update], rule: str) -> list[str]:
    """The common tensor names of ``updates`` (sorted); ProtocolError if none or they differ."""
    if not updates:
        raise ProtocolError(f"{rule} needs at least one valid update; the round has none")
    if any(u.num_samples <= 0 for u in updates):
        raise ProtocolError("every update must report a positive number of samples")
    keys = sorted(updates[0].weights)
    for u in updates[1:]:
        if sorted(u.weights) != keys:
            raise ProtocolError(f"update from {u.member} has different tensor names")
    return keys


_MEAN_CHUNK = 1 << 18
"""Values per block of :func:`_weighted_mean_flat`: two float64 blocks (4 MiB) stay in cache."""


def _weighted_mean_flat(
    sources: Sequence[torch.Tensor],
    weights: Sequence[float],
    total: float,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """``sum_i(float64(s_i) * w_i) / total`` over flat tensors, block by block, as float64.

    The very operations of the plain definition, element by element and members in the given
    order (convert, multiply, add, then divide), each rounded once, so the bits are the same;
    only the memory traffic differs: every block of the accumulator stays in cache while all
    members are added to it, and no temporary the size of the model is ever allocated (that
    allocation, not the arithmetic, made the plain loop run at 0.16 GB/s). A float32 ``dtype``
    casts each finished block, as ``.to(torch.float32)`` of the whole would.
    """
    size = sources[0].numel()
    out = torch.empty(size, dtype=dtype)
    block = min(size, _MEAN_CHUNK)
    accumulator = torch.empty(block, dtype=torch.float64)
    scratch = torch.empty(block, dtype=torch.float64)
    for start in range(0, size, _MEAN_CHUNK):
        stop = min(size, start + _MEAN_CHUNK)
        acc = accumulator[: stop - start]
        part = scratch[: stop - start]
        acc.zero_()
        for source, weight in zip(sources, weights, strict=True):
            part.copy_(source[start:stop])
            part.mul_(float(weight))
            acc.add_(part)
        acc.div_(total)
        out[start:stop].copy_(acc)
    return out


def weighted_mean(
    tensors: Sequence[Mapping[str, torch.Tensor]], weights: Sequence[float], keys: Sequence[str]
) -> StateDict:
    """``sum_i(float64(t_i) * w_i) / sum_i(w_i)`` per key, summed in the given order, as float32."""
    total = float(sum(weights))
    result: StateDict = {}
    for key in keys:
        reference = tensors[0][key]
        flat = [t[key].detach().reshape(-1) for t in tensors]
        mean = _weighted_mean_flat(flat, weights, total, torch.float32)
        result[key] = mean.reshape(reference.shape).contiguous()
    return result


def weighted_mean_vector(vectors: Sequence[Vector], weights: Sequence[float]) -> Vector:
    """Float64 :func:`weighted_mean` of flat vectors (same operations, so the same values)."""
    return _weighted_mean_flat(vectors, weights, float(sum(weights)))


def flatten(weights: Mapping[str, torch.Tensor], keys: Sequence[str]) -> Vector:
    """``weights`` as one float64 vector, the tensors of ``keys`` (sorted) one after another."""
    return torch.cat([weights[k].detach().reshape(-1).to(torch.float64) for k in keys])


def unflatten(
    vector: Vector, reference: Mapping[str, torch.Tensor], keys: Sequence[str]
) -> StateDict:
    """Inverse of :func:`flatten`: float32, contiguous tensors shaped like ``reference``.

    Each tensor is cast separately, so no two results share storage (safetensors refuses that).
    """
    out: StateDict = {}
    start = 0
    for k in keys:
        shape = reference[k].shape
        size = reference[k].numel()
        out[k] = vector[start : start + size].reshape(shape).to(torch.float32).contiguous()
        start += size
    if start != vector.numel():
        raise ProtocolError(f"vector of {vector.numel()} values does not fit a model of {start}")
    return out


def update_vectors(updates: Sequence[Update], keys: Sequence[str]) -> list[Vector]:
    """Each update's weights as a float64 vector, in the given order."""
    return [flatten(u.weights, keys) for u in updates]


def deltas(
    updates: Sequence[Update], previous: Mapping[str, torch.Tensor], keys: Sequence[str]
) -> list[Vector]:
    """Each update's change ``float64(w_i) - float64(previous)`` as a vector."""
    missing = [k for k in keys if k not in previous]
    if missing:
        raise ProtocolError(f"the round's global model lacks tensors {missing}")
    base = flatten(previous, keys)
    return [flatten(u.weights, keys) - base for u in updates]


CHANGE_BLOCK = 1 << 15
"""Coordinates per block of :func:`change_blocks` (``n`` float64 rows of it stay in cache)."""


def change_blocks(
    updates: Sequence[Update], previous: Mapping[str, torch.Tensor], keys: Sequence[str]
) -> Iterator[np.ndarray]:
    """:func:`deltas` one block of coordinates at a time, as ``[n, block]`` float64 arrays.

    The same per-entry operation (``float64(w) - float64(previous)``), so each entry has the
    same bits; statistics that are exact sums (:class:`ExactSum`) or per coordinate (medians)
    are then the same as on the whole vectors, with memory for one block instead of ``n``
    model-sized float64 copies.
    """
    missing = [k for k in keys if k not in previous]
    if missing:
        raise ProtocolError(f"the round's global model lacks tensors {missing}")
    return _blocks(updates, keys, previous)


def weight_blocks(updates: Sequence[Update], keys: Sequence[str]) -> Iterator[np.ndarray]:
    """:func:`update_vectors` one block of coordinates at a time, as ``[n, block]`` float64."""
    return _blocks(updates, keys, None)


def _blocks(
    updates: Sequence[Update], keys: Sequence[str], origin: Mapping[str, torch.Tensor] | None
) -> Iterator[np.ndarray]:
    for key in keys:
        rows = [u.weights[key].detach().reshape(-1) for u in updates]
        base = None if origin is None else origin[key].detach().reshape(-1)
        for start in range(0, rows[0].numel(), CHANGE_BLOCK):
            part = slice(start, start + CHANGE_BLOCK)
            block = np.stack([r[part].to(torch.float64).numpy() for r in rows])
            if base is not None:
                block -= base[part].to(torch.float64).numpy()
            yield block


_SUM_BLOCK = 1 << 16
"""Values per block of :func:`fixed_sum` (a block's integer temporaries stay in cache)."""
_SUM_FLUSH = 1 << 25
"""Values summed into the float64 bins before they are moved into a Python integer: up to 2**25
halves below 2**27 each stay below 2**53, so every bin sum is an exact integer."""
_FAST_SUM_MAX = 2.0**960
"""Beyond this magnitude the exact sum might overflow; ``math.fsum`` then decides (and raises)."""
_MANTISSA = (1 << 52) - 1
_HIDDEN_BIT = 1 << 52
_EXPONENTS = 2048


def fixed_sum(vector: Vector) -> float:
    """The correctly rounded sum of a float64 vector: the value of ``math.fsum`` (order-free).

    Read from its IEEE 754 bits, each value is ``m * 2**(b - 1075)`` with an integer ``m`` of at
    most 53 bits (the hidden bit added for normal numbers) and ``b`` the exponent field (1 for
    subnormals). The signed ``m`` are split into 27- and 26-bit halves and summed per ``b``
    exactly (float64 bins of integers below 2**53), block by block; the bins are combined into
    one Python integer and divided by 2**1075, which Python rounds correctly, half to even, like
    ``fsum``. An exact zero is ``+0.0`` as in ``fsum``; non-finite or huge inputs go to ``fsum``.
    """
    x = _as_float64(vector)
    return _exact_sum(x.size, lambda part: x[part], lambda: x)


def fixed_dot(a: Vector, b: Vector) -> float:
    """``fsum(a_j * b_j)``: the products element-wise, then :func:`fixed_sum` (block by block,
    so no product vector the size of the model is allocated)."""
    x, y = _as_float64(a), _as_float64(b)
    scratch = np.empty(min(x.size, _SUM_BLOCK))

    def products(part: slice) -> np.ndarray:
        out: np.ndarray = np.multiply(x[part], y[part], out=scratch[: len(x[part])])
        return out

    return _exact_sum(x.size, products, lambda: x * y)


def squared_distance(a: Vector, b: Vector) -> float:
    """``fsum((a_j - b_j)^2)``: differences and squares element-wise, then :func:`fixed_sum`."""
    x, y = _as_float64(a), _as_float64(b)
    scratch = np.empty(min(x.size, _SUM_BLOCK))

    def squares(part: slice) -> np.ndarray:
        out: np.ndarray = np.subtract(x[part], y[part], out=scratch[: len(x[part])])
        np.multiply(out, out, out=out)
        return out

    return _exact_sum(x.size, squares, lambda: (x - y) * (x - y))


def _as_float64(vector: Vector) -> np.ndarray:
    values: np.ndarray = vector.detach().reshape(-1).to(torch.float64).numpy()
    return values


def _exact_sum(
    size: int, values_of: Callable[[slice], np.ndarray], everything: Callable[[], np.ndarray]
) -> float:
    """:func:`fixed_sum` of the values ``values_of`` gives block by block (``everything`` at once
    for ``math.fsum`` when a block holds a non-finite or huge value)."""
    total = ExactSum()
    with np.errstate(over="ignore", invalid="ignore"):  # inf/NaN products are fsum's to judge
        for start in range(0, size, _SUM_BLOCK):
            if not total.add(values_of(slice(start, start + _SUM_BLOCK))):
                return math.fsum(everything().tolist())
    return total.value()


class ExactSum:
    """A running sum of float64 values, fed block by block, whose :meth:`value` is what
    ``math.fsum`` gives of all of them (see :func:`fixed_sum`: exact, so order-free, which
    lets a sum over a whole model be taken one block of coordinates at a time)."""

    def __init__(self) -> None:
        self._high = np.zeros(_EXPONENTS)
        self._low = np.zeros(_EXPONENTS)
        self._pending = 0
        self._total = 0

    def add(self, values: np.ndarray) -> bool:
        """Add a 1-D float64 block; False (and nothing added) when it holds a non-finite value
        or one at or beyond 2**960, which this exact path leaves to ``math.fsum``."""
        if values.size == 0:
            return True
        if not max(float(values.max()), -float(values.min())) < _FAST_SUM_MAX:
            return False
        bits = np.ascontiguousarray(values, dtype=np.float64).view(np.int64)
        for start in range(0, bits.size, _SUM_BLOCK):
            self._add_block(bits[start : start + _SUM_BLOCK])
        return True

    def _add_block(self, block: np.ndarray) -> None:
        exponent = (block >> 52) & (_EXPONENTS - 1)
        mantissa = block & _MANTISSA
        mantissa[exponent != 0] |= _HIDDEN_BIT
        np.negative(mantissa, out=mantissa, where=block < 0)
        np.maximum(exponent, 1, out=exponent)
        high = mantissa >> 26
        mantissa -= high << 26  # the low half, 0 <= low < 2**26
        if self._pending + block.size > _SUM_FLUSH:
            self._flush()
        self._high += np.bincount(exponent, weights=high, minlength=_EXPONENTS)
        self._low += np.bincount(exponent, weights=mantissa, minlength=_EXPONENTS)
        self._pending += block.size

    def _flush(self) -> None:
        for k in np.flatnonzero(self._high).tolist():
            self._total += int(self._high[k]) << (26 + k)
        for k in np.flatnonzero(self._low).tolist():
            self._total += int(self._low[k]) << k
        self._high[:] = 0.0
        self._low[:] = 0.0
        self._pending = 0

    def value(self) -> float:
        """The correctly rounded sum so far (``+0.0`` for an exact zero, as ``fsum``)."""
        self._flush()
        if self._total == 0:
            return 0.0
        return self._total / (1 << 1075)


def squared_norm(vector: Vector) -> float:
    """``fsum(x_j * x_j)``: squares element-wise, then a correctly rounded sum."""
    return fixed_dot(vector, vector)


def l2_norm(vector: Vector) -> float:
    """``sqrt(fsum(x_j * x_j))`` (``math.sqrt`` is correctly rounded)."""
    return math.sqrt(squared_norm(vector))


def pairwise_sq_distances_by_blocks(blocks: Iterable[np.ndarray], n: int) -> list[list[float]]:
    """:func:`pairwise_sq_distances` of the vectors ``blocks`` yields ``[n, block]`` at a time
    (exact running sums: the same bits, memory for one block)."""
    sums = {(i, j): ExactSum() for i in range(n) for j in range(i + 1, n)}
    with np.errstate(over="ignore", invalid="ignore"):
        for block in blocks:
            for (i, j), total in sums.items():
                diff = block[i] - block[j]
                if not total.add(diff * diff):
                    raise ProtocolError("updates hold a non-finite or huge value")
    d = [[0.0] * n for _ in range(n)]
    for (i, j), total in sums.items():
        d[i][j] = d[j][i] = total.value()
    return d


def pairwise_sq_distances(vectors: Sequence[Vector]) -> list[list[float]]:
    """``d[i][j] = fsum((x_i - x_j)^2)``, computed once per pair and mirrored; 0 on the diagonal."""
    n = len(vectors)
    d = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(i + 1, n):
            d[i][j] = d[j][i] = squared_distance(vectors[i], vectors[j])
    return d


def sorted_members(vectors: Sequence[Vector]) -> Vector:
    """The vectors stacked ``[n, P]`` and sorted along the member axis (exact, stable)."""
    stacked = torch.stack(list(vectors)).numpy()
    return torch.from_numpy(np.sort(stacked, axis=0, kind="stable"))


def median_of_floats(values: Sequence[float]) -> float:
    """Median of Python floats; for an even count ``(a + b) / 2`` of the two middle values."""
    s = sorted(values)
    n = len(s)
    if n == 0:
        raise ProtocolError("median of no values")
    mid = n // 2
    return s[mid] if n % 2 else (s[mid - 1] + s[mid]) / 2.0


def coordinate_median(vectors: Sequence[Vector]) -> tuple[Vector, Vector, Vector]:
    """Coordinate-wise median and the lower and upper middle values per coordinate.

    Odd count: the middle value (lower = upper = median).  Even count: ``(lo + hi) / 2`` in
    float64, which is what ``numpy.median`` computes.
    """
    s = sorted_members(vectors)
    n = s.shape[0]
    lo, hi = s[(n - 1) // 2], s[n // 2]
    return (lo + hi) / 2.0 if n % 2 == 0 else lo.clone(), lo, hi


class MemberRanks:
    """Every coordinate's member values in stable sorted order: one ``argsort`` serves the
    coordinate-wise median and each leave-one-out median (credit needs both every round).

    In the stable order of all ``n`` values of a coordinate, member ``i`` sits at rank ``r``;
    the others' ``k``-th value is the ``k``-th of all when ``k < r``, else the ``k+1``-th. So
    :meth:`without` picks the same middle values (and averages them with the same operation) as
    sorting the others anew, and :meth:`median` the same as :func:`coordinate_median`.
    """

    def __init__(self, vectors: Sequence[Vector] | np.ndarray) -> None:
        """``vectors``: float64 vectors, or already stacked ``[n, P]`` (one block of them)."""
        if len(vectors) == 0:
            raise ProtocolError("a median of no vectors")
        self._n = len(vectors)
        stacked = vectors if isinstance(vectors, np.ndarray) else torch.stack(list(vectors)).numpy()
        self._order = np.argsort(stacked, axis=0, kind="stable")
        self._ordered = np.take_along_axis(stacked, self._order, axis=0)
        self._ranks: np.ndarray | None = None

    def median(self) -> Vector:
        """``coordinate_median(vectors)[0]``."""
        return torch.from_numpy(self._middle(self._ordered, self._n))

    def median_array(self) -> np.ndarray:
        return self._middle(self._ordered, self._n)

    def without(self, i: int) -> Vector:
        """``coordinate_median(vectors without i)[0]``."""
        return torch.from_numpy(self.without_array(i))

    def without_array(self, i: int) -> np.ndarray:
        """:meth:`without` as a NumPy array."""
        if self._n < 2:
            raise ProtocolError("a leave-one-out median needs at least two vectors")
        if self._ranks is None:
            self._ranks = np.empty(self._order.shape, dtype=np.int32)
            ranks = np.arange(self._n, dtype=np.int32)[:, None]
            np.put_along_axis(self._ranks, self._order, ranks, axis=0)
        m = self._n - 1
        lo_k, hi_k = (m - 1) // 2, m // 2
        rank = self._ranks[i]
        lo: np.ndarray = np.where(rank <= lo_k, self._ordered[lo_k + 1], self._ordered[lo_k])
        if m % 2:
            return lo
        hi = np.where(rank <= hi_k, self._ordered[hi_k + 1], self._ordered[hi_k])
        middle: np.ndarray = (lo + hi) / 2.0
        return middle

    @staticmethod
    def _middle(ordered: np.ndarray, n: int) -> np.ndarray:
        lo, hi = ordered[(n - 1) // 2], ordered[n // 2]
        middle: np.ndarray = (lo + hi) / 2.0 if n % 2 == 0 else lo.copy()
        return middle


def leave_one_out_medians(vectors: Sequence[Vector]) -> list[Vector]:
    """For each ``i``, ``coordinate_median(vectors without i)[0]`` (see :class:`MemberRanks`)."""
    if len(vectors) < 2:
        raise ProtocolError("a leave-one-out median needs at least two vectors")
    ranks = MemberRanks(vectors)
    return [ranks.without(i) for i in range(len(vectors))]


def trimmed_mean(vectors: Sequence[Vector], trim_each: int) -> tuple[Vector, Vector, Vector]:
    """Per coordinate, drop the ``trim_each`` smallest and largest values and average the rest.

    The kept sorted values are summed in ascending order, then divided by their count.  Also
    returns the smallest and largest kept value per coordinate.
    """
    n = len(vectors)
    kept = n - 2 * trim_each
    if trim_each < 0 or kept <= 0:
        raise ProtocolError(
            f"trimming {trim_each} of {n} updates from each end leaves none to average"
        )
    s = sorted_members(vectors)
    acc = torch.zeros_like(s[0])
    for row in range(trim_each, n - trim_each):
        acc = acc + s[row]
    return acc / float(kept), s[trim_each], s[n - trim_each - 1]


def inside_fraction(vectors: Sequence[Vector], lo: Vector, hi: Vector) -> list[float]:
    """For each vector, the fraction of coordinates with ``lo <= x <= hi`` (integer counts)."""
    size = lo.numel()
    if size == 0:
        return [1.0] * len(vectors)
    return [int(((v >= lo) & (v <= hi)).sum().item()) / size for v in vectors]


def weiszfeld(
    vectors: Sequence[Vector], alphas: Sequence[float], iterations: int, eps: float
) -> tuple[Vector, list[float]]:
    """Weighted geometric median by a fixed number of (smoothed) Weiszfeld steps.

    Starts from the coordinate-wise median ``z`` (a far outlier cannot drag the start, so a few
    steps suffice; from the weighted mean, one update scaled by 100 among four still pulled the
    result far off after 8 steps); each step sets ``beta_i = alpha_i / max(eps,
    ||x_i - z||)`` and ``z = sum_i(beta_i * x_i) / sum_i(beta_i)`` (members summed in order).
    Returns ``z`` and the ``beta`` of the last step (the start's ``alpha`` if no step ran).
    """
    z = coordinate_median(vectors)[0]
    betas = [float(a) for a in alphas]
    for _ in range(iterations):
        betas = [
            float(a) / max(eps, math.sqrt(squared_distance(v, z)))
            for v, a in zip(vectors, alphas, strict=True)
        ]
        z = weighted_mean_vector(vectors, betas)
    return z, betas
