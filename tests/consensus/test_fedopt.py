"""FedAdam and FedYogi: the paper's update, and state carried between rounds through bytes."""

from __future__ import annotations

import numpy as np
import torch

from consensus.serialization import weights_from_bytes, weights_to_bytes
from consensus.strategies.abc import RoundContext, Update
from consensus.strategies.fedopt import FedAdam, FedYogi


def _round(seed: int, previous: dict[str, torch.Tensor] | None = None):
    g = torch.Generator().manual_seed(seed)
    prev = previous or {"w": torch.randn(6, 4, generator=g), "b": torch.randn(4, generator=g)}
    ups = [
        Update(
            f"m{i}",
            {k: v + 0.1 * torch.randn(*v.shape, generator=g) for k, v in prev.items()},
            4 + 2 * i,
        )
        for i in range(4)
    ]
    return ups, prev


def _np_mean(ups: list[Update], key: str) -> np.ndarray:
    total = sum(u.num_samples for u in ups)
    acc = np.zeros(ups[0].weights[key].shape)
    for u in ups:
        acc = acc + u.weights[key].numpy().astype(np.float64) * float(u.num_samples)
    return acc / total


def test_fedadam_round_one_matches_the_paper_formula() -> None:
    ups, prev = _round(0)
    rule = FedAdam(server_lr=0.05, beta1=0.9, beta2=0.99, tau=1e-3)
    agg = rule.aggregate(ups, RoundContext(1, prev, 0))
    for key in prev:
        x = prev[key].numpy().astype(np.float64)
        d = _np_mean(ups, key) - x
        m = 0.9 * np.zeros_like(d) + (1.0 - 0.9) * d
        v = 0.99 * np.zeros_like(d) + (1.0 - 0.99) * (d * d)
        new = x + 0.05 * m / (np.sqrt(v) + 1e-3)
        assert new.astype(np.float32).tobytes() == agg.weights[key].numpy().tobytes()
        assert m.astype(np.float32).tobytes() == agg.state["m/" + key].numpy().tobytes()
        assert v.astype(np.float32).tobytes() == agg.state["v/" + key].numpy().tobytes()


def test_fedyogi_second_round_uses_the_sign_rule() -> None:
    ups, prev = _round(1)
    rule = FedYogi()
    first = rule.aggregate(ups, RoundContext(1, prev, 0))
    ups2, _ = _round(2, first.weights)
    second = rule.aggregate(ups2, RoundContext(2, first.weights, 0, first.state))
    for key in prev:
        x = first.weights[key].numpy().astype(np.float64)
        d = _np_mean(ups2, key) - x
        m0 = first.state["m/" + key].numpy().astype(np.float64)
        v0 = first.state["v/" + key].numpy().astype(np.float64)
        m = 0.9 * m0 + (1.0 - 0.9) * d
        v = v0 - (1.0 - 0.99) * (d * d) * np.sign(v0 - d * d)
        new = x + 0.01 * m / (np.sqrt(v) + 1e-3)
        assert new.astype(np.float32).tobytes() == second.weights[key].numpy().tobytes()


def test_state_round_trips_through_the_context() -> None:
    ups, prev = _round(3)
    one = FedAdam()
    r1 = one.aggregate(ups, RoundContext(1, prev, 5))
    ups2, _ = _round(4, r1.weights)
    same_object = one.aggregate(ups2, RoundContext(2, r1.weights, 6, r1.state))
    fresh_object = FedAdam().aggregate(ups2, RoundContext(2, r1.weights, 6, dict(r1.state)))
    assert weights_to_bytes(same_object.weights) == weights_to_bytes(fresh_object.weights)
    assert weights_to_bytes(same_object.state) == weights_to_bytes(fresh_object.state)
    without_state = FedAdam().aggregate(ups2, RoundContext(2, r1.weights, 6))
    assert weights_to_bytes(without_state.weights) != weights_to_bytes(same_object.weights)


def test_state_survives_safetensors_bytes() -> None:
    ups, prev = _round(5)
    r1 = FedAdam().aggregate(ups, RoundContext(1, prev, 0))
    ups2, _ = _round(6, r1.weights)
    stored = weights_from_bytes(weights_to_bytes(r1.state), reference=FedAdam().state_names(prev))
    direct = FedAdam().aggregate(ups2, RoundContext(2, r1.weights, 0, r1.state))
    via_bytes = FedAdam().aggregate(ups2, RoundContext(2, r1.weights, 0, stored))
    assert weights_to_bytes(direct.weights) == weights_to_bytes(via_bytes.weights)
    assert weights_to_bytes(direct.state) == weights_to_bytes(via_bytes.state)


def test_state_names_are_zeros_shaped_like_the_model() -> None:
    _, prev = _round(7)
    names = FedYogi().state_names(prev)
    assert sorted(names) == ["m/b", "m/w", "v/b", "v/w"]
    assert all(
        t.dtype == torch.float32 and t.shape == prev[n[2:]].shape and not t.any()
        for n, t in names.items()
    )
