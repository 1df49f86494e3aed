from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from consensus.aggregation import canonical_order, fedavg
from consensus.serialization import weights_to_bytes
from consensus.strategies.abc import RoundContext, Update
from consensus.strategies.fedavg import FedAvg
from consensus.strategies.registry import build_rule
from consensus.task_spec import AggregationSpec
from fedchain.errors import ConfigError, ProtocolError

CTX = RoundContext(round=1, previous={}, seed=0)


def _updates(seed: int, n: int = 3) -> list[Update]:
    g = torch.Generator().manual_seed(seed)
    return [
        Update(
            member=f"m{i}",
            weights={"w": torch.randn(4, 13, generator=g), "b": torch.randn(4, generator=g)},
            num_samples=10 * (i + 1) + i,
        )
        for i in range(n)
    ]


def test_weighted_mean_matches_numpy_float64_reference() -> None:
    ups = _updates(0)
    got = FedAvg().aggregate(ups, CTX).weights
    total = sum(u.num_samples for u in ups)
    for key in ("w", "b"):
        acc = np.zeros(ups[0].weights[key].shape)
        for u in ups:
            acc = acc + u.weights[key].numpy().astype(np.float64) * float(u.num_samples)
        assert (acc / total).astype(np.float32).tobytes() == got[key].numpy().tobytes()


def test_single_update_is_returned_unchanged() -> None:
    (u,) = _updates(1, n=1)
    got = FedAvg().aggregate([u], CTX).weights
    assert torch.equal(got["w"], u.weights["w"])


def test_refuses_empty_mismatched_and_nonpositive() -> None:
    with pytest.raises(ProtocolError):
        FedAvg().aggregate([], CTX)
    a, b = _updates(2, n=2)
    with pytest.raises(ProtocolError, match="different tensor names"):
        FedAvg().aggregate([a, Update("x", {"w": b.weights["w"]}, 5)], CTX)
    with pytest.raises(ProtocolError, match="positive"):
        FedAvg().aggregate([a, Update("x", b.weights, 0)], CTX)


def test_unknown_rule_names_known_ones() -> None:
    with pytest.raises(ConfigError, match="fedavg"):
        build_rule(AggregationSpec(rule="krum-typo"))


def test_fedavg_pairs_helper() -> None:
    ups = _updates(3)
    direct = FedAvg().aggregate(ups, CTX).weights
    via = fedavg([(u.weights, u.num_samples) for u in ups])
    assert all(torch.equal(direct[k], via[k]) for k in direct)


_AGGREGATE_SCRIPT = """
import sys
from pathlib import Path
from consensus.serialization import weights_from_bytes, weights_to_bytes
from consensus.strategies.abc import RoundContext, Update
from consensus.strategies.fedavg import FedAvg
paths = sys.argv[2:]
ups = [Update(p, weights_from_bytes(Path(p).read_bytes()), 7 + i) for i, p in enumerate(paths)]
agg = FedAvg().aggregate(ups, RoundContext(1, {}, 0))
Path(sys.argv[1]).write_bytes(weights_to_bytes(agg.weights))
"""


def test_two_processes_produce_identical_bytes(tmp_path: Path) -> None:
    inputs = []
    for u in _updates(4, n=4):
        p = tmp_path / f"{u.member}.safetensors"
        p.write_bytes(weights_to_bytes(u.weights))
        inputs.append(str(p))
    outs = []
    for i in range(2):
        out = tmp_path / f"agg{i}.safetensors"
        env_threads = {"OMP_NUM_THREADS": str(i + 1)}
        subprocess.run(
            [sys.executable, "-c", _AGGREGATE_SCRIPT, str(out), *inputs],
            check=True,
            env={**__import__("os").environ, **env_threads},
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_canonical_order_is_by_update_digest_not_chain_order() -> None:
    ups = [
        (bytes([d]) * 32, Update(m, weights={"w": torch.tensor([d / 7])}, num_samples=d))
        for m, d in (("0xA", 9), ("0xB", 2), ("0xC", 5))
    ]
    assert [u.member for u in canonical_order(ups)] == ["0xB", "0xC", "0xA"]
    shuffled = [ups[2], ups[0], ups[1]]
    a = FedAvg().aggregate(canonical_order(ups), CTX).weights
    b = FedAvg().aggregate(canonical_order(shuffled), CTX).weights
    assert torch.equal(a["w"], b["w"])
