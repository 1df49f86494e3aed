"""Logistic regression: the baseline every other model has to beat."""

from __future__ import annotations

import torch
from torch import nn

from fedchain.errors import ConfigError


class LogisticRegression(nn.Module):
    """One linear layer giving ``num_classes`` logits (softmax regression; two classes = logreg).

    Binary tasks use two logits rather than one so that every model in the project shares one
    loss (cross-entropy) and one output shape ``[n, num_classes]``.
    """

    def __init__(self, in_features: int, num_classes: int = 2) -> None:
        super().__init__()
        if in_features < 1 or num_classes < 2:
            raise ConfigError(
                f"logreg needs in_features >= 1 and num_classes >= 2, got {in_features}, "
                f"{num_classes}"
            )
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # type: ignore[no-any-return]
