"""An institution's privacy budget over a task: how much noise, and what each update costs.

DP-SGD with Poisson sampling (rate ``q = batch_size / n``) and noise multiplier ``sigma`` is
accounted by Opacus's RDP or PRV accountant.  Every round trains ``steps_per_round`` steps, so
the epsilon spent after ``k`` released updates is a pure function of
``(sigma, q, k * steps_per_round, delta)``: nothing to persist but ``k``, which the chain holds
(the member's submissions in the task).  A peer asks :meth:`PrivacyBudget.allows` before it
trains and stops submitting when the next update would go over the target.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from opacus.accountants import PRVAccountant, RDPAccountant
from opacus.accountants.accountant import IAccountant
from opacus.accountants.utils import get_noise_multiplier
from opacus.validators import ModuleValidator
from torch import nn

from consensus.task_spec import PrivacySettings, TrainingSettings
from fedchain.errors import ConfigError

EPSILON_SLACK = 1.001
"""A derived noise multiplier reaches the target only within the search's tolerance."""


def check_private_trainable(model: nn.Module) -> None:
    """Refuse a model with a layer DP-SGD cannot train, naming the layer (e.g. BatchNorm)."""
    problems = []
    for name, module in model.named_modules():
        validate = ModuleValidator.VALIDATORS.get(type(module))
        if validate is None:
            continue
        for error in validate(module):
            reason = str(error).split(". ")[0]
            problems.append(f"layer {name or '<model>'} ({type(module).__name__}): {reason}")
    if problems:
        raise ConfigError(
            "the model cannot be trained with differential privacy: "
            + "; ".join(problems)
            + " (use a privacy-safe layer such as GroupNorm or LayerNorm in the task's model)"
        )


def _accountant(kind: str, sigma: float, rate: float, steps: int) -> IAccountant:
    accountant: IAccountant = RDPAccountant() if kind == "rdp" else PRVAccountant()
    accountant.history = [(sigma, rate, steps)] if steps else []
    return accountant


@dataclass(frozen=True)
class PrivacyBudget:
    """One institution's DP plan for a task (see the module docstring)."""

    settings: PrivacySettings
    noise_multiplier: float
    sample_rate: float
    steps_per_round: int
    planned_rounds: int

    @classmethod
    def plan(
        cls,
        settings: PrivacySettings,
        training: TrainingSettings,
        num_samples: int,
        planned_rounds: int,
    ) -> PrivacyBudget:
        """The noise and sampling for ``num_samples`` samples over ``planned_rounds`` rounds."""
        if num_samples < 1:
            raise ConfigError("differential privacy needs at least one training sample")
        if planned_rounds < 1:
            raise ConfigError(f"a privacy budget needs >= 1 planned round, got {planned_rounds}")
        rate = min(1.0, training.batch_size / num_samples)
        steps = training.epochs * max(1, round(1 / rate))
        sigma = settings.noise_multiplier
        if sigma is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Opacus warns about its optimal-order search
                sigma = float(
                    get_noise_multiplier(
                        target_epsilon=settings.target_epsilon,
                        target_delta=settings.delta,
                        sample_rate=rate,
                        steps=steps * planned_rounds,
                        accountant=settings.accountant,
                    )
                )
        return cls(settings, sigma, rate, steps, planned_rounds)

    def epsilon(self, released: int) -> float:
        """Epsilon spent once ``released`` updates trained this way are out (0 for none)."""
        if released <= 0:
            return 0.0
        accountant = _accountant(
            self.settings.accountant, self.noise_multiplier, self.sample_rate,
            released * self.steps_per_round,
        )  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = float(accountant.get_epsilon(self.settings.delta))
        return value if math.isfinite(value) else math.inf

    def allows(self, released: int) -> bool:
        """Whether ``released`` updates stay within the target epsilon."""
        return self.epsilon(released) <= self.settings.target_epsilon * EPSILON_SLACK

    def describe(self) -> str:
        s = self.settings
        return (
            f"DP-SGD: noise multiplier {self.noise_multiplier:.3f}, clipping {s.max_grad_norm:g}, "
            f"sampling rate {self.sample_rate:.4f}, {self.steps_per_round} steps per round; "
            f"target epsilon {s.target_epsilon:g} at delta {s.delta:g} ({s.accountant})"
        )
