"""Secure aggregation's cost per round: masking in each member, unmasking in the aggregator.

    scripts/bench/secagg [--parameters 1000000] [--members 4,10] [--repeats 3] [--quick]
                         [--out runs/bench]

For each member count, every member's change (a random float64 vector of ``--parameters``
values) is clipped, fixed-point encoded and masked toward every other member
(:mod:`consensus.secagg`); the aggregator unmasks the sum with everyone present, and with one
member missing (the others' reveals applied).  Each is checked to equal fixed-point FedAvg.  The
baseline is what a plain round does instead: FedAvg of the same updates as float32 tensors
(:func:`consensus.aggregation.fedavg`).  Times are the median of ``--repeats``.  ``--quick``:
10,000 parameters, 3 members, 1 repeat, for the tests.

Writes ``<out>/secagg.json`` shaped ``{members: {"encode_mask_s": per member,
"unmask_s": ..., "unmask_one_missing_s": ..., "plain_fedavg_s": ..., "masked_bytes": ...,
"plain_bytes": ...}}`` and ``secagg.meta.json`` (configuration, machine, timing).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]  # run with the project's .venv (scripts/bench/_run)
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from nacl.public import PrivateKey  # noqa: E402

from consensus.aggregation import fedavg  # noqa: E402
from consensus.secagg.fixed_point import FixedPoint  # noqa: E402
from consensus.secagg.rounds import (  # noqa: E402
    RoundKeys,
    encode_with_weight,
    fixed_point_fedavg,
    mask_update,
    reveals_for,
    unmask_sum,
)
from consensus.secagg.wire import masked_size  # noqa: E402

FP = FixedPoint(clip_norm=5.0, fraction_bits=24)


def _median_seconds(repeats: int, work: Callable[[], Any]) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def measure(parameters: int, members: int, repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(members)
    secrets = {f"0x{i:040x}": rng.bytes(32) for i in range(1, members + 1)}
    keys = RoundKeys(1, 1, {m: bytes(PrivateKey(s).public_key) for m, s in secrets.items()})
    changes = {m: rng.normal(0, 1e-3, parameters) for m in secrets}
    weight = 100
    first = next(iter(secrets))

    def one_member() -> Any:
        return mask_update(
            encode_with_weight(FP, changes[first], weight), first, secrets[first], keys
        )

    encode_mask, _ = _median_seconds(repeats, one_member)
    masked = {m: mask_update(encode_with_weight(FP, c, weight), m, secrets[m], keys)
              for m, c in changes.items()}  # fmt: skip
    unmask, result = _median_seconds(repeats, lambda: unmask_sum(FP, masked, [], keys))
    expected = fixed_point_fedavg(FP, list(changes.values()), [weight] * members)
    assert result.mean_change.tobytes() == expected.mean_change.tobytes()
    live = list(secrets)[1:]
    reveals = [r for m in live for r in reveals_for(m, secrets[m], keys, live)]
    some = {m: masked[m] for m in live}
    missing, _ = _median_seconds(repeats, lambda: unmask_sum(FP, some, reveals, keys))
    plain = [({"w": torch.from_numpy(c).to(torch.float32)}, weight) for c in changes.values()]
    plain_s, _ = _median_seconds(repeats, lambda: fedavg(plain))
    return {
        "encode_mask_s": round(encode_mask, 4),
        "unmask_s": round(unmask, 4),
        "unmask_one_missing_s": round(missing, 4),
        "plain_fedavg_s": round(plain_s, 4),
        "masked_bytes": masked_size(parameters),
        "plain_bytes": 4 * parameters,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parameters", type=int, default=1_000_000)
    parser.add_argument("--members", default="4,10")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    args = parser.parse_args(argv)
    counts = [int(m) for m in args.members.split(",")]
    parameters, repeats = args.parameters, args.repeats
    if args.quick:
        parameters, counts, repeats = 10_000, [3], 1
    torch.set_num_threads(1)
    started = time.monotonic()
    table = {str(n): measure(parameters, n, repeats) for n in counts}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "secagg.json").write_text(json.dumps(table, indent=2))
    meta = {
        "parameters": parameters,
        "members": counts,
        "repeats": repeats,
        "quick": args.quick,
        "clip_norm": FP.clip_norm,
        "fraction_bits": FP.fraction_bits,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    (args.out / "secagg.meta.json").write_text(json.dumps(meta, indent=2))
    for n, row in table.items():
        print(f"{n} members, {parameters} parameters: {json.dumps(row)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
