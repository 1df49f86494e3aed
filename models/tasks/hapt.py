"""``hapt``: UCI HAPT smartphone activities, accelerometer + gyroscope fused by attention.

Built-in partitions ``subjects-1`` .. ``subjects-N`` (N = ``task_args.n_institutions``,
default 6): the 30 subjects in N consecutive groups (6 -> subjects 1-5, 6-10, ...); each group's
last subject is its test split (6 -> subjects 5, 10, ..., 30, as in the learning bench), the
others its training split. ``[data] modalities = ["acc"]`` makes an institution without a
gyroscope. Own recordings: an ``.npz`` with ``acc``/``gyro`` ``[n, 3, 128]`` (50 Hz windows of
2.56 s) and ``labels`` 0..5 in the order of ``models.datasets.hapt.ACTIVITIES``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from consensus.task_spec import TaskSpec, TrainingSettings
from fedchain.errors import ConfigError
from models.datasets.hapt import ACTIVITIES, SUBJECTS, HaptWindows, load_hapt_windows
from models.tasks.abc import InstitutionData, PrimaryMetric
from models.tasks.local_data import LocalData
from models.tasks.signals import (
    SignalsTask,
    check_signal_data,
    held_modalities,
    load_signals,
    signal_args,
)
from models.training import Samples

MAX_INSTITUTIONS = len(SUBJECTS) // 2


@functools.lru_cache(maxsize=1)
def packaged_windows() -> HaptWindows:
    """The packaged windows, read once per process (unpickling takes seconds)."""
    return load_hapt_windows()


def subject_groups(n_institutions: int) -> list[np.ndarray]:
    """Subjects of each institution: ``SUBJECTS`` in ``n`` consecutive groups."""
    return [np.asarray(g) for g in np.array_split(np.asarray(SUBJECTS), n_institutions)]


class HaptTask(SignalsTask):
    name = "hapt"
    primary_metric: ClassVar[PrimaryMetric] = "macro_f1"
    description = "UCI HAPT: acc + gyro windows of 30 subjects, attention fusion"

    def default_task_args(self) -> dict[str, Any]:
        shape = {"channels": 3, "length": 128}
        return {
            "modalities": {"acc": dict(shape), "gyro": dict(shape)},
            "classes": len(ACTIVITIES),
            "n_institutions": 6,
        }

    def check_task_args(self, task_args: Mapping[str, Any]) -> None:
        super().check_task_args(task_args)
        n = task_args.get("n_institutions", 6)
        if not isinstance(n, int) or not 1 <= n <= MAX_INSTITUTIONS:
            raise ConfigError(
                f"task 'hapt': task_args.n_institutions must be 1..{MAX_INSTITUTIONS}, got {n!r}"
            )

    def default_training(self) -> TrainingSettings:
        # The learning bench's federated setting: one epoch of Adam 1e-3, batch 64.
        return TrainingSettings(epochs=1, lr=1e-3, batch_size=64, seed=0)

    def primary_metric_for(self, spec: TaskSpec) -> PrimaryMetric:
        return "macro_f1"

    def builtin_institutions(self, spec: TaskSpec) -> list[str]:
        n = int(spec.task_args.get("n_institutions", 6))
        return [f"subjects-{i}" for i in range(1, n + 1)]

    def load(self, spec: TaskSpec, local: LocalData) -> InstitutionData:
        self.check_spec(spec)
        args = signal_args(spec.task_args, self.name)
        if local.path is not None:
            return load_signals(self, spec, local, args)
        names = self.builtin_institutions(spec)
        if local.partition not in names:
            raise ConfigError(
                f"unknown hapt partition {local.partition!r}; choose one of {', '.join(names)} "
                "(or set data.path to your own .npz)"
            )
        held = held_modalities(self, args, local)
        group = subject_groups(len(names))[names.index(local.partition)]
        windows = packaged_windows()
        train = np.flatnonzero(np.isin(windows.subjects, group[:-1]))
        test = np.flatnonzero(windows.subjects == group[-1])
        everything = windows.modalities()

        def pick(index: np.ndarray) -> Samples:
            x = {m: np.ascontiguousarray(everything[m][index]) for m in held}
            return Samples(x, windows.labels[index])

        data = InstitutionData(train=pick(train), test=pick(test), modalities=held)
        check_signal_data(self, spec, data, args, local.where)
        return data
