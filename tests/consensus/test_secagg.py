"""Secure aggregation core: exact cancellation, dropout recovery, noise-like masked updates."""

from __future__ import annotations

import numpy as np
import pytest
from nacl.public import PrivateKey
from scipy import stats

from consensus.secagg.fixed_point import CapacityError, FixedPoint, Residues
from consensus.secagg.masks import expand, pair_context, pair_seed
from consensus.secagg.rounds import (
    Reveal,
    RoundKeys,
    check_mean,
    encode_with_weight,
    fixed_point_fedavg,
    mask_update,
    reveals_for,
    unmask_sum,
)
from consensus.secagg.wire import (
    masked_from_bytes,
    masked_size,
    masked_to_bytes,
    reveals_from_bytes,
    reveals_to_bytes,
)
from fedchain.errors import ProtocolError

FP = FixedPoint(clip_norm=5.0, fraction_bits=24)
SIZE = 4_000


def _members(n: int, seed: int = 7) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    return {f"0x{i:040x}": bytes(rng.integers(0, 256, 32, dtype=np.uint8)) for i in range(1, n + 1)}


def _keys(secrets: dict[str, bytes], round_no: int = 3) -> RoundKeys:
    publics = {m: bytes(PrivateKey(s).public_key) for m, s in secrets.items()}
    return RoundKeys(task_id=1, round=round_no, publics=publics)


def _changes(n: int, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 0.05, SIZE) for _ in range(n)]


def _masked(
    secrets: dict[str, bytes],
    keys: RoundKeys,
    changes: list[np.ndarray],
    weights: list[int],
    members: list[str] | None = None,
) -> dict[str, Residues]:
    chosen = members or list(secrets)
    return {
        m: mask_update(encode_with_weight(FP, changes[i], weights[i]), m, secrets[m], keys)
        for i, m in enumerate(secrets)
        if m in chosen
    }


def test_masks_cancel_and_the_result_is_fixed_point_fedavg_bit_for_bit() -> None:
    secrets = _members(4)
    keys = _keys(secrets)
    changes, weights = _changes(4), [304, 260, 46, 130]
    result = unmask_sum(FP, _masked(secrets, keys, changes, weights), [], keys)
    expected = fixed_point_fedavg(FP, changes, weights)
    assert result.total_weight == sum(weights)
    assert result.mean_change.tobytes() == expected.mean_change.tobytes()
    float_avg = sum(c * w for c, w in zip(changes, weights, strict=True)) / sum(weights)
    assert np.abs(result.mean_change - float_avg).max() <= 1 / FP.scale  # rounding only
    check_mean(FP, result, sum(weights))


def test_the_pair_seed_is_the_same_from_both_sides_and_bound_to_the_round() -> None:
    a, b = PrivateKey(bytes(range(32))), PrivateKey(bytes(range(1, 33)))
    ctx = pair_context(1, 2, "0xA", "0xb")
    assert ctx == pair_context(1, 2, "0xB", "0xa")
    seed = pair_seed(bytes(a), bytes(b.public_key), ctx)
    assert seed == pair_seed(bytes(b), bytes(a.public_key), ctx)
    assert seed != pair_seed(bytes(a), bytes(b.public_key), pair_context(1, 3, "0xa", "0xb"))
    assert np.array_equal(expand(seed, 10), expand(seed, 10))


def test_members_that_did_not_submit_are_unmasked_with_the_survivors_reveals() -> None:
    secrets = _members(5)
    keys = _keys(secrets)
    changes, weights = _changes(5), [10, 20, 30, 40, 50]
    names = list(secrets)
    live = names[:2] + names[3:4]  # members 2 and 4 dropped before submitting
    masked = _masked(secrets, keys, changes, weights, live)
    reveals = [r for m in live for r in reveals_for(m, secrets[m], keys, live)]
    assert {(r.revealer, r.dropped) for r in reveals} == {
        (s, d) for s in live for d in (names[2], names[4])
    }
    result = unmask_sum(FP, masked, reveals, keys)
    kept = [0, 1, 3]
    expected = fixed_point_fedavg(FP, [changes[i] for i in kept], [weights[i] for i in kept])
    assert result.mean_change.tobytes() == expected.mean_change.tobytes()
    with pytest.raises(ProtocolError, match="cannot unmask without the pair seeds"):
        unmask_sum(FP, masked, reveals[1:], keys)


def test_no_seed_shared_between_submitters_is_ever_revealed_or_accepted() -> None:
    secrets = _members(3)
    keys = _keys(secrets)
    names = list(secrets)
    assert reveals_for(names[0], secrets[names[0]], keys, names) == []
    masked = _masked(secrets, keys, _changes(3), [1, 2, 3])
    bad = Reveal(names[0], names[1], bytes(32))
    with pytest.raises(ProtocolError, match="refused reveal"):
        unmask_sum(FP, masked, [bad], keys)
    with pytest.raises(ProtocolError, match="reveals nothing"):
        reveals_for(names[0], secrets[names[0]], keys, names[1:])


def _uniform_p_values(values: np.ndarray) -> tuple[float, float]:
    """Chi-square p over the top byte (256 bins) and KS p of values / 2**64 against U(0,1)."""
    top = (values >> np.uint64(56)).astype(np.int64)
    chi = stats.chisquare(np.bincount(top, minlength=256)).pvalue
    ks = stats.kstest(values.astype(np.float64) / 2.0**64, "uniform").pvalue
    return float(chi), float(ks)


def test_a_masked_update_alone_is_indistinguishable_from_uniform_noise() -> None:
    secrets = _members(4)
    keys = _keys(secrets)
    changes = _changes(4)
    member = next(iter(secrets))
    plain = encode_with_weight(FP, changes[0], 120)
    masked = mask_update(plain, member, secrets[member], keys)
    chi, ks = _uniform_p_values(masked)
    assert chi > 0.001 and ks > 0.001, (chi, ks)
    # the same tests see through an unmasked encoding at once (they can fail)
    chi_plain, ks_plain = _uniform_p_values(plain)
    assert chi_plain < 1e-9 and ks_plain < 1e-9


def test_overflow_bound_is_explicit_and_checked() -> None:
    fp = FixedPoint(clip_norm=10.0, fraction_bits=24)
    limit = fp.max_total_weight()
    assert (fp.clip_norm * fp.scale + 1) * limit < 2**63
    fp.check_capacity(limit)
    with pytest.raises(CapacityError, match="could overflow"):
        fp.check_capacity(limit + 1)
    with pytest.raises(CapacityError):
        FixedPoint(clip_norm=1e6, fraction_bits=40).check_capacity(100 * 1_000_000)


def test_changes_are_clipped_before_encoding_and_bad_values_refused() -> None:
    big = np.full(SIZE, 1.0)  # norm sqrt(4000) ~ 63 > clip_norm 5
    result = fixed_point_fedavg(FP, [big], [3])
    assert abs(float(np.linalg.norm(result.mean_change)) - FP.clip_norm) < 1e-4
    with pytest.raises(ProtocolError, match="NaN or infinite"):
        FP.encode(np.array([np.nan]), 1)
    with pytest.raises(ProtocolError, match="positive sample count"):
        FP.encode(np.zeros(3), 0)


def test_an_unclipped_member_is_caught_by_the_aggregate_check() -> None:
    secrets = _members(3)
    keys = _keys(secrets)
    changes, weights = _changes(3), [5, 5, 5]
    masked = _masked(secrets, keys, changes, weights)
    first = next(iter(masked))
    cheat = np.zeros(SIZE + 1, dtype=np.uint64)
    cheat[0] = np.uint64(int(1000 * FP.scale) * 5)
    masked[first] = masked[first] + cheat
    result = unmask_sum(FP, masked, [], keys)
    with pytest.raises(ProtocolError, match="did not clip"):
        check_mean(FP, result, 15)
    with pytest.raises(ProtocolError, match="samples recorded on the chain"):
        check_mean(FP, result, 16)


def test_a_low_order_public_key_is_refused() -> None:
    with pytest.raises(ProtocolError, match="low-order point"):
        pair_seed(bytes(range(32)), bytes(32), pair_context(1, 1, "0xa", "0xb"))


def test_masked_updates_and_reveals_travel_as_checked_bytes() -> None:
    secrets = _members(3)
    keys = _keys(secrets)
    names = list(secrets)
    masked = _masked(secrets, keys, _changes(3), [4, 5, 6], names[:2])
    data = masked_to_bytes(masked[names[0]])
    assert len(data) == masked_size(SIZE)
    assert np.array_equal(masked_from_bytes(data, SIZE), masked[names[0]])
    chi, ks = _uniform_p_values(np.frombuffer(data[8:], dtype="<u8"))  # as stored, it is noise
    assert chi > 0.001 and ks > 0.001
    with pytest.raises(ProtocolError, match=r"has \d+ bytes, got"):
        masked_from_bytes(data[:-8], SIZE)
    with pytest.raises(ProtocolError, match="wrong header"):
        masked_from_bytes(b"\x00" * len(data), SIZE)
    reveals = reveals_for(names[0], secrets[names[0]], keys, names[:2])
    wire = reveals_to_bytes(1, 3, names[0], reveals)
    assert reveals_from_bytes(wire, 1, 3) == reveals
    with pytest.raises(ProtocolError, match="not for task 1 round 4"):
        reveals_from_bytes(wire, 1, 4)
    with pytest.raises(ProtocolError, match="malformed"):
        reveals_from_bytes(b"{}", 1, 3)
