"""What a peer (and the simulator) holds: the agreed task and spec, and its own data.

``Learner.train(global_weights, round_no)`` is the institution's local step: start from the
agreed global model, train with ``spec.training`` on the local training split, hand back the
weights (the only thing that leaves the institution, with the sample count).

The training seed of a round is :func:`round_seed` — a pure function of ``spec.training.seed``,
the round number and the institution's name — so a real peer process and the simulator train
bit-identically (with one torch thread; see ``models.tasks.determinism``), while different
institutions draw different shuffles and dropout masks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import torch
from torch import nn

from consensus.strategies.abc import StateDict
from consensus.strategies.registry import build_rule
from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from models.registry import build_model_from_spec, init_model
from models.tasks.abc import InstitutionData, Task
from models.tasks.local_data import LocalData
from models.training import Samples, evaluate, train

if TYPE_CHECKING:
    from models.privacy import PrivacyBudget

_SEED_DOMAIN = b"fedchain/train-seed/v1"


def round_seed(base_seed: int, round_no: int, institution: str) -> int:
    """``int.from_bytes(sha256("fedchain/train-seed/v1" 0 base 0 round 0 name)[:8]) >> 1``.

    Fields are separated by a zero byte (names cannot hold one in a config); the result is
    below 2**63, valid for ``torch.manual_seed``.
    """
    message = b"\x00".join(
        [_SEED_DOMAIN, str(base_seed).encode(), str(round_no).encode(), institution.encode()]
    )
    return int.from_bytes(hashlib.sha256(message).digest()[:8], "big") >> 1


def build_model(spec: TaskSpec) -> nn.Module:
    """The spec's architecture, to load weights into (the caller's torch RNG is not drawn from)."""
    with torch.random.fork_rng(devices=[]):
        return build_model_from_spec(spec.model.model_dump())


def _float32_clone(model: nn.Module) -> StateDict:
    out: StateDict = {}
    for key, tensor in model.state_dict().items():
        if not torch.is_floating_point(tensor):
            raise ConfigError(f"state entry {key!r} is {tensor.dtype}; peers exchange float32 only")
        out[key] = tensor.detach().to(torch.float32).clone().contiguous()
    return out


def initial_weights(spec: TaskSpec) -> StateDict:
    """The round-1 global model: the architecture initialised from ``spec.training.seed``.

    The caller's torch RNG is left untouched.
    """
    return _float32_clone(init_model(spec.model.model_dump(), spec.training.seed))


def reference_weights(spec: TaskSpec) -> StateDict:
    """Names, shapes and dtypes every exchanged state dict must have (values meaningless)."""
    return {k: v.detach() for k, v in build_model(spec).state_dict().items()}


def evaluate_weights(
    spec: TaskSpec, weights: Mapping[str, torch.Tensor], data: Samples
) -> dict[str, float]:
    """``models.training.evaluate`` of the spec's model holding ``weights`` on ``data``."""
    model = build_model(spec)
    model.load_state_dict(dict(weights))
    return evaluate(model, data)


class Learner:
    """One institution's side of a task: ``Learner(task, spec, data, institution)``."""

    def __init__(self, task: Task, spec: TaskSpec, data: InstitutionData, institution: str):
        task.check_spec(spec)
        self.task = task
        self.spec = spec
        self.data = data
        self.institution = institution
        self.proximal_mu = build_rule(spec.aggregation).client_hooks().proximal_mu
        """The agreed rule's client-side proximal term (FedProx; 0 for every other rule)."""
        self._budget: PrivacyBudget | None = None
        if spec.privacy is not None:
            from models.privacy import check_private_trainable  # Opacus: ~3 s to import

            check_private_trainable(build_model(spec))

    @classmethod
    def from_local(cls, task: Task, spec: TaskSpec, local: LocalData, institution: str) -> Learner:
        """Load this institution's data (validated against ``spec``) and hold it."""
        return cls(task, spec, task.load(spec, local), institution)

    @property
    def num_samples(self) -> int:
        return self.data.num_samples

    def round_seed(self, round_no: int) -> int:
        return round_seed(self.spec.training.seed, round_no, self.institution)

    def reference_weights(self) -> StateDict:
        return reference_weights(self.spec)

    def initial_weights(self) -> StateDict:
        return initial_weights(self.spec)

    def plan_privacy(self, planned_rounds: int) -> PrivacyBudget | None:
        """This institution's DP plan over a task of ``planned_rounds`` rounds (None: no DP).

        Called once the task's length is known (a peer reads it from the chain), before the
        first :meth:`train`; planning again for the same length returns the same plan.
        """
        if self.spec.privacy is None:
            return None
        if self._budget is None or self._budget.planned_rounds != planned_rounds:
            from models.privacy import PrivacyBudget

            self._budget = PrivacyBudget.plan(
                self.spec.privacy, self.spec.training, self.num_samples, planned_rounds
            )
        return self._budget

    def train(self, global_weights: Mapping[str, torch.Tensor], round_no: int) -> StateDict:
        """Local training from the agreed model; contiguous float32 clones of the result.

        With differential privacy in the spec this is one round of DP-SGD under the plan of
        :meth:`plan_privacy`, which must have been made.
        """
        model = build_model(self.spec)
        model.load_state_dict(dict(global_weights))
        seed = self.round_seed(round_no)
        if self.spec.privacy is not None:
            if self._budget is None:
                raise ConfigError("plan the privacy budget (Learner.plan_privacy) before training")
            from models.privacy import train_private

            train_private(
                model, self.data.train, self.spec.training, self._budget, seed,
                proximal_mu=self.proximal_mu,
            )  # fmt: skip
        else:
            train(model, self.data.train, self.spec.training, seed, proximal_mu=self.proximal_mu)
        return _float32_clone(model)

    def evaluate(self, weights: Mapping[str, torch.Tensor]) -> dict[str, float]:
        """Metrics on the local test split; ProtocolError if the outputs are not finite."""
        return evaluate_weights(self.spec, weights, self.data.test)


def train_alone(
    task: Task,
    spec: TaskSpec,
    data: InstitutionData,
    institution: str,
    initial: Mapping[str, torch.Tensor],
    rounds: int,
) -> StateDict:
    """The local-only baseline: one institution alone, from ``initial``, for as many epochs as
    ``rounds`` federated rounds train (with differential privacy: the same budget, spent in one
    long training)."""
    t = spec.training
    alone = spec.model_copy(update={"training": t.model_copy(update={"epochs": t.epochs * rounds})})
    learner = Learner(task, alone, data, institution)
    learner.plan_privacy(1)
    return learner.train(initial, round_no=0)
