"""DP-SGD local training: Poisson-sampled batches, per-sample clipping, Gaussian noise (Opacus).

Opacus computes per-sample gradients (``GradSampleModule``: hooks on standard layers) and
clips, sums and noises them (``DPOptimizer``); this module drives them the way
:func:`models.training.train` drives plain training, and keeps its guarantees:

* bit-identical in every process: batches come from a generator seeded with the round seed,
  the noise from a second one, inside a forked RNG context, with one torch thread;
* batches are Poisson samples (each sample joins with probability ``q``), which is what the
  accountant in :mod:`models.privacy.budget` assumes; an empty batch is skipped but still
  counted as spent (conservative);
* parameters no sample reaches (the encoder of a modality this institution lacks) are left
  out of the step, so they get no noise and stay exactly the agreed model's;
* FedProx's proximal gradient depends on no data, so it is added after the noise.
"""

from __future__ import annotations

import math
import warnings

import torch
from opacus import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn

from consensus.task_spec import TrainingSettings
from models.privacy.budget import PrivacyBudget, check_private_trainable
from models.training import (
    ModelInput,
    Samples,
    add_proximal_gradient,
    checked_targets,
    make_optimizer,
    to_tensor,
)

_NOISE_STREAM = 0x5EED_0F_D9
"""Offset of the noise generator's seed from the batch sampler's (independent streams)."""


def _unreached(model: nn.Module, x: ModelInput) -> list[nn.Parameter]:
    """Trainable parameters no sample's loss reaches (probed on one sample, in eval mode)."""
    was_training = model.training
    model.eval()
    model.zero_grad(set_to_none=True)
    try:
        with torch.enable_grad():
            model(to_tensor(x, slice(0, 1))).sum().backward()
        return [p for p in model.parameters() if p.requires_grad and p.grad is None]
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)


def train_private(
    model: nn.Module,
    data: Samples,
    settings: TrainingSettings,
    budget: PrivacyBudget,
    seed: int,
    *,
    proximal_mu: float = 0.0,
) -> float:
    """Train ``model`` in place for one round of DP-SGD; the mean loss of the sampled batches.

    ``budget`` fixes the noise multiplier, clipping norm, sampling rate and number of steps;
    ``settings`` the optimizer, learning rate and weight decay (``epochs`` and ``batch_size``
    already went into the budget's steps and rate).
    """
    check_private_trainable(model)
    targets = checked_targets(data, settings, proximal_mu)
    n = int(targets.shape[0])
    frozen = _unreached(model, data.x)
    for p in frozen:
        p.requires_grad_(False)
    anchors = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    loss_fn = nn.CrossEntropyLoss()
    sampled_loss, sampled = 0.0, 0
    wrapped = GradSampleModule(model, loss_reduction="mean")
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # dropout inside the model
            sampler = torch.Generator().manual_seed(seed)
            noise = torch.Generator().manual_seed((seed + _NOISE_STREAM) % 2**63)
            optimizer = DPOptimizer(
                make_optimizer(
                    settings.optimizer,
                    [p for p in model.parameters() if p.requires_grad],
                    settings.lr,
                    settings.weight_decay,
                ),
                noise_multiplier=budget.noise_multiplier,
                max_grad_norm=budget.settings.max_grad_norm,
                expected_batch_size=max(1, round(budget.sample_rate * n)),
                loss_reduction="mean",
                generator=noise,
            )
            wrapped.train()
            for _ in range(budget.steps_per_round):
                batch = (torch.rand(n, generator=sampler) < budget.sample_rate).nonzero()
                rows = batch.flatten().numpy()
                optimizer.zero_grad(set_to_none=True)
                if rows.size == 0:
                    # An empty Poisson batch is still a step (the accountant counts it): the
                    # update is noise alone, as Opacus's own empty batches are.  Skipping it
                    # would leave the model exactly unchanged, which no noise covers.
                    for p in optimizer.params:
                        p.grad_sample = torch.zeros((0, *p.shape), dtype=p.dtype)
                else:
                    loss = loss_fn(wrapped(to_tensor(data.x, rows)), targets[rows])
                    with warnings.catch_warnings():
                        # Opacus's hooks on the first layer: its input needs no gradient.
                        warnings.filterwarnings("ignore", message="Full backward hook is firing")
                        loss.backward()
                    sampled_loss += float(loss.detach()) * rows.size
                    sampled += rows.size
                if optimizer.pre_step():
                    if anchors:
                        add_proximal_gradient(model, anchors, proximal_mu)
                    optimizer.original_optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    finally:
        wrapped._close()
        for p in frozen:
            p.requires_grad_(True)
    model.eval()
    return sampled_loss / sampled if sampled else math.nan
