"""The one trainer and the one evaluate: pooled, local-only, federated runs and peers use them.

Determinism matters here: in a federation every peer must be able to re-run a training step and
get the same weights, and benchmarks must be reproducible. On CPU, with a fixed seed, the same
model, data and hyper-parameters give bit-identical weights; the global torch RNG state of the
caller is left untouched.

Inputs are either one array (a single modality, first axis = samples) or a mapping from modality
name to array (multi-modal models). A mapping holds only the modalities a site actually has.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from consensus.task_spec import TrainingSettings
from fedchain.errors import ConfigError, DataError, ProtocolError
from fedchain.logs import Progress
from models.metrics import classification_metrics

ModelInput = np.ndarray | Mapping[str, np.ndarray]
TensorInput = torch.Tensor | dict[str, torch.Tensor]

_PREDICT_CHUNK = 1024
PROGRESS_AFTER = 2.0
"""Seconds of training after which progress is logged (a peer's first round, big tasks)."""

log = logging.getLogger("fedchain.training")


def num_samples(x: ModelInput) -> int:
    """Number of samples in an input, checking that all modalities agree."""
    if isinstance(x, np.ndarray):
        return int(x.shape[0])
    if not x:
        raise DataError("multi-modal input has no modality at all; give at least one array")
    sizes = {name: int(array.shape[0]) for name, array in x.items()}
    if len(set(sizes.values())) != 1:
        raise DataError(f"modalities disagree on the number of samples: {sizes}")
    return next(iter(sizes.values()))


@dataclass(frozen=True)
class Samples:
    """Inputs and labels: ``x`` one array (first axis = samples) or {modality: array}."""

    x: ModelInput
    y: np.ndarray

    @property
    def size(self) -> int:
        return num_samples(self.x)

    @property
    def modalities(self) -> tuple[str, ...]:
        """Modality names held (empty for a single-array input)."""
        return () if isinstance(self.x, np.ndarray) else tuple(sorted(self.x))


def to_tensor(x: ModelInput, index: np.ndarray | slice) -> TensorInput:
    if isinstance(x, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(x[index], dtype=np.float32))
    return {
        name: torch.from_numpy(np.ascontiguousarray(array[index], dtype=np.float32))
        for name, array in x.items()
    }


def _batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    for start in range(0, order.size, batch_size):
        yield order[start : start + batch_size]


def _check_hyper(epochs: int, lr: float, batch_size: int) -> None:
    if epochs < 1:
        raise ConfigError(f"epochs must be >= 1, got {epochs}")
    if not lr > 0:
        raise ConfigError(f"learning rate must be > 0, got {lr}")
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")


def make_optimizer(
    name: str, params: Iterable[nn.Parameter], lr: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ConfigError(f"unknown optimizer {name!r}; use 'adam' or 'sgd'")


@torch.no_grad()
def add_proximal_gradient(model: nn.Module, anchors: list[torch.Tensor], mu: float) -> None:
    """Add ``mu * (p - anchor_p)``, the gradient of ``mu / 2 * ||p - anchor_p||^2`` (FedProx).

    Only to parameters the batch's loss reached: a parameter without a gradient (an encoder of
    a modality this site lacks) stays untouched, as in plain training, even under weight decay.
    """
    for param, anchor in zip(model.parameters(), anchors, strict=True):
        if param.grad is not None:
            param.grad.add_((param - anchor) * mu)


def checked_targets(data: Samples, settings: TrainingSettings, proximal_mu: float) -> torch.Tensor:
    """The labels as class indices, after checking the inputs and hyper-parameters agree."""
    _check_hyper(settings.epochs, settings.lr, settings.batch_size)
    if not (proximal_mu >= 0 and np.isfinite(proximal_mu)):
        raise ConfigError(f"proximal_mu must be a finite number >= 0, got {proximal_mu}")
    n = num_samples(data.x)
    if n == 0:
        raise DataError("cannot train on zero samples")
    labels = np.asarray(data.y)
    if labels.shape != (n,):
        raise DataError(f"labels have shape {labels.shape}, expected ({n},) to match the inputs")
    if labels.min() < 0:
        raise DataError(f"labels must be class indices >= 0, found {int(labels.min())}")
    return torch.from_numpy(labels.astype(np.int64))


def train(
    model: nn.Module,
    data: Samples,
    settings: TrainingSettings,
    seed: int,
    *,
    proximal_mu: float = 0.0,
) -> float:
    """Train ``model`` in place with cross-entropy; return the last epoch's mean loss.

    ``proximal_mu`` > 0 adds FedProx's ``mu / 2 * ||w - w_start||^2`` to every batch's loss
    (``w_start``: the parameters at the start of this call, i.e. the global model), by adding its
    gradient ``mu * (w - w_start)`` after the backward pass; the returned loss is the
    cross-entropy alone.  At 0 (the default) training is exactly the plain one.

    Uses ``settings``' epochs, lr, batch_size, weight_decay and optimizer (``"adam"``, or
    ``"sgd"`` with momentum 0.9); ``seed`` (not ``settings.seed``) seeds this call, so callers
    decide how seeds vary per round and institution. A fresh optimizer is made on every call
    (federated rounds start from the aggregate, with no optimizer state carried over).
    Shuffling and any dropout inside the model draw from a torch RNG seeded with ``seed``
    inside a forked RNG context.
    """
    targets = checked_targets(data, settings, proximal_mu)
    x = data.x
    n = int(targets.shape[0])
    opt = make_optimizer(settings.optimizer, model.parameters(), settings.lr, settings.weight_decay)
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    anchors = [p.detach().clone() for p in model.parameters()] if proximal_mu > 0 else []
    last_epoch_loss = float("nan")
    batches = settings.epochs * math.ceil(n / settings.batch_size)
    progress = Progress(
        log, f"training on {n} samples", batches, unit="batches", quiet_for=PROGRESS_AFTER
    )
    done = 0
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        shuffler = torch.Generator().manual_seed(seed)
        model.train()
        for _ in range(settings.epochs):
            order = torch.randperm(n, generator=shuffler).numpy()
            total = 0.0
            for batch in _batches(order, settings.batch_size):
                opt.zero_grad(set_to_none=True)
                logits = model(to_tensor(x, batch))
                loss = loss_fn(logits, targets[batch])
                (loss / batch.size).backward()
                if anchors:
                    add_proximal_gradient(model, anchors, proximal_mu)
                opt.step()
                total += float(loss.detach())
                done += 1
                progress.update(done)
            last_epoch_loss = total / n
    model.eval()
    return last_epoch_loss


def evaluate(model: nn.Module, data: Samples) -> dict[str, float]:
    """``models.metrics.classification_metrics`` of ``model`` on ``data``.

    Raises ProtocolError "... non-finite outputs on k of n local test samples" when the model's
    outputs are not finite (a peer records that instead of crashing on an agreed model).
    """
    probs = predict_proba(model, data.x)
    bad = int((~np.isfinite(probs.reshape(len(probs), -1)).all(axis=1)).sum())
    if bad:
        raise ProtocolError(
            f"the model gives non-finite outputs on {bad} of {len(probs)} local test samples"
        )
    return classification_metrics(data.y, probs)


@torch.no_grad()
def predict_logits(model: nn.Module, x: ModelInput) -> np.ndarray:
    """Raw logits ``[n, num_classes]`` in evaluation mode, computed in chunks."""
    n = num_samples(x)
    was_training = model.training
    model.eval()
    try:
        chunks = [
            model(to_tensor(x, slice(start, start + _PREDICT_CHUNK))).numpy()
            for start in range(0, n, _PREDICT_CHUNK)
        ]
    finally:
        model.train(was_training)
    if not chunks:
        raise DataError("cannot predict on zero samples")
    return np.concatenate(chunks, axis=0)


def predict_proba(model: nn.Module, x: ModelInput) -> np.ndarray:
    """Probability of class 1 ``[n]`` for two-class models, class probabilities ``[n, C]`` else."""
    logits = torch.from_numpy(predict_logits(model, x).astype(np.float64))
    probs = torch.softmax(logits, dim=1).numpy()
    if probs.shape[1] == 2:
        return np.asarray(probs[:, 1])
    return np.asarray(probs)
