"""``label-flip``: the member trains honestly on its training split with every label
``y`` replaced by ``num_classes - 1 - y`` (its test split, used to evaluate the agreed model, is
left as it is).

``num_classes`` defaults to the largest label in the member's data plus one (at least 2); set it
when the member's data may lack the task's last class (e.g. a label-skewed hapt site).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from fedchain.attacks.abc import Attack
from fedchain.errors import ConfigError
from models.tasks.abc import InstitutionData
from models.training import Samples


class LabelFlip(Attack):
    name = "label-flip"

    def __init__(self, num_classes: int | None = None) -> None:
        ok = isinstance(num_classes, int) and not isinstance(num_classes, bool)
        if num_classes is not None and not (ok and num_classes >= 2):
            raise ConfigError(
                f"attack {self.name!r}: parameter 'num_classes' must be an integer >= 2, "
                f"got {num_classes!r}"
            )
        self.num_classes = num_classes

    def classes_of(self, data: InstitutionData) -> int:
        if self.num_classes is not None:
            return self.num_classes
        labels = np.concatenate([np.asarray(data.train.y), np.asarray(data.test.y)])
        return max(2, int(labels.max()) + 1) if labels.size else 2

    def poison_data(self, data: InstitutionData) -> InstitutionData:
        classes = self.classes_of(data)
        y = np.asarray(data.train.y)
        if y.size and (y.min() < 0 or y.max() >= classes):
            raise ConfigError(
                f"attack {self.name!r}: labels outside 0..{classes - 1}; set num_classes"
            )
        flipped = (classes - 1 - y).astype(y.dtype, copy=False)
        return replace(data, train=Samples(data.train.x, flipped))

    def params(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes}
