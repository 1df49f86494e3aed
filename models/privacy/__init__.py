"""Differential privacy in local training: DP-SGD and its accountant (Opacus).

:mod:`.budget` plans an institution's noise and tracks the epsilon its released updates cost;
:mod:`.dp_sgd` trains with per-sample clipping and Gaussian noise.
"""

from models.privacy.budget import PrivacyBudget, check_private_trainable
from models.privacy.dp_sgd import train_private

__all__ = ["PrivacyBudget", "check_private_trainable", "train_private"]
