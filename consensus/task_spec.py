"""The task spec: what a federation agreed to train, stored on IPFS and named on-chain.

Every peer reads the same spec by the CID recorded in the contract, so the task (and its
parameters), the model architecture, the aggregation rule and the training settings are part
of the federation's agreement rather than of each peer's local configuration. Only where each
institution's own records are stays local (``models.tasks.LocalData``, the peer's ``[data]``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from consensus.codecs.pipeline import UpdateEncoding, build_encoding
from fedchain.errors import ProtocolError

MAX_SPEC_BYTES = 64 * 1024


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Frozen):
    arch: str = Field(min_length=1)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class TrainingSettings(_Frozen):
    """The one hyper-parameter type: what one call of ``models.training.train`` does.

    ``seed`` is the federation's base seed (round-1 model, per-round training seeds); code that
    runs several seeds (the learning bench) passes its own seed to ``train`` instead.
    ``optimizer``: ``"adam"``, or ``"sgd"`` with momentum 0.9.
    """

    epochs: int = Field(ge=1, le=10_000)
    lr: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    seed: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    optimizer: Literal["adam", "sgd"] = "adam"


DEFAULT_RULE = "multi-krum"
"""The rule a new task gets (chosen with ``scripts/bench/robust``: on heart it kept every attack
but label flipping within 1 point of its clean run, 0.7 point below FedAvg without attack).
Its default tolerates one hostile member (``byzantine = 1``); raise it as the federation grows."""


class RuleSpec(_Frozen):
    """A registered aggregation rule or wrapper by name, with its parameters."""

    name: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)


class AggregationSpec(_Frozen):
    """The agreed aggregation: a rule (``consensus.strategies.registry``) and its wrappers.

    ``wrappers`` apply innermost first: ``[norm-clip]`` around ``median`` clips each update, then
    takes the median.  In a spec file a bare rule name (``aggregation = "fedavg"``) is accepted.
    """

    rule: str = Field(default=DEFAULT_RULE, min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    wrappers: tuple[RuleSpec, ...] = ()


class EncodingSpec(_Frozen):
    """How members' updates travel (``consensus.codecs``): a registered codec and its parameters.

    ``none`` (the default) sends the plain trained weights; ``fp16``, ``int8`` and ``topk``
    (``params: {fraction: 0.01}``) send the change from the round's global model, compressed.
    In a spec file a bare codec name (``encoding = "int8"``) is accepted.
    """

    codec: str = Field(default="none", min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    compress: str = "none"
    """``deflate`` compresses the encoded change losslessly (``consensus.codecs.deflate``)."""

    @model_validator(mode="after")
    def _registered(self) -> EncodingSpec:
        self.build()  # ConfigError (a ValueError) names what is wrong
        return self

    def build(self) -> UpdateEncoding:
        """The encoder and bounded decoder this spec agrees on."""
        return build_encoding(self.codec, self.params, self.compress)


class CreditSettings(_Frozen):
    """When an update earns credit (``consensus.contribution``)."""

    norm_band: float = Field(default=3.0, gt=1)
    """A change above this multiple, or below 1/norm_band**2, of the round's median change earns
    nothing."""
    min_alignment: float = Field(default=0.1, ge=-1, lt=1)
    """A change whose cosine with the other members' median change is not above this earns
    nothing."""
    min_progress: float = Field(default=0.3, ge=0, le=1)
    """A round whose members' coordinate-wise median change is below this multiple of the median
    change norm pays nobody (a converged federation: honest and sign-flipped changes look alike
    there)."""


class PrivacySettings(_Frozen):
    """Differential privacy per institution: DP-SGD (per-sample clipping and Gaussian noise)
    in local training, with an accountant tracking each institution's spent epsilon.

    The budget (``target_epsilon``, ``delta``) covers the whole task: every update an institution
    releases spends some of it, and a peer whose next update would exceed it stops submitting.
    ``noise_multiplier`` left unset is derived from the target over the task's rounds.
    """

    target_epsilon: float = Field(gt=0, le=1000)
    delta: float = Field(default=1e-5, gt=0, lt=1)
    """Should be well below 1 / (training samples of the largest institution)."""
    max_grad_norm: float = Field(gt=0)
    """Each sample's gradient is clipped to this L2 norm before noise is added."""
    noise_multiplier: float | None = Field(default=None, gt=0)
    accountant: Literal["rdp", "prv"] = "rdp"


SECURE_AGGREGATION_RULES = ("fedavg", "fedprox")
"""Rules whose server side needs only the weighted sum of the updates (FedAvg's)."""


class SecureAggregationSettings(_Frozen):
    """Secure aggregation (``consensus.secagg``): members' updates are masked so that only
    their weighted sum can be read.

    Each member clips its change from the round's global model to ``clip_norm`` locally and
    encodes it in fixed point with ``fraction_bits`` of precision; the aggregate is fixed-point
    FedAvg of the clipped changes.  Rules and checks that read individual updates cannot run
    (see :meth:`TaskSpec._fits_secure_aggregation`).
    """

    clip_norm: float = Field(gt=0, le=1e6)
    """Each member's change is scaled down to this L2 norm before masking."""
    fraction_bits: int = Field(default=24, ge=0, le=52)
    """Fixed-point precision: changes are rounded to multiples of 2**-fraction_bits."""


class TaskSpec(_Frozen):
    version: int = Field(default=1, ge=1, le=1)
    name: str = Field(min_length=1, max_length=128)
    task: str = Field(min_length=1)
    """A registered task name (``models.tasks.get_task``): how each peer reads its own data."""
    task_args: dict[str, Any] = Field(default_factory=dict)
    """Federation-agreed task parameters: a CSV schema, an image size, the modalities, ..."""
    model: ModelSpec
    aggregation: AggregationSpec = Field(default_factory=AggregationSpec)
    training: TrainingSettings
    max_abs_weight: float = Field(default=1e6, gt=0)
    """An update with any weight of larger magnitude is left out: huge but finite values would
    overflow the aggregate's outputs on every peer (a one-member denial of service)."""

    max_update_norm_ratio: float | None = Field(default=None, gt=1)
    """When set, an update whose change from the global model has an L2 norm above this multiple
    of the round's median change is left out before aggregation (with its reason recorded)."""

    credit: CreditSettings = Field(default_factory=CreditSettings)

    encoding: EncodingSpec = Field(default_factory=EncodingSpec)
    """How updates are encoded between each member's trainer and the content store."""

    privacy: PrivacySettings | None = None
    """Differential privacy in local training (``models.privacy``); None: plain training."""

    confidentiality: Literal["none", "members"] = "none"
    """``members``: every update and aggregate is sealed (``peer.confidential``) to the members'
    on-chain X25519 keys and the federation's audit key before it reaches IPFS."""

    secure_aggregation: SecureAggregationSettings | None = None
    """Masked updates, only their sum readable (``consensus.secagg``); None: plain updates."""

    @model_validator(mode="after")
    def _fits_secure_aggregation(self) -> TaskSpec:
        """Refuse what needs each member's update in the clear when updates are masked."""
        if self.secure_aggregation is None:
            return self
        rule = self.aggregation.rule
        if rule not in SECURE_AGGREGATION_RULES:
            raise ValueError(
                f"secure aggregation cannot run the aggregation rule {rule!r}: it reads each "
                'member\'s update, which the mode hides; use aggregation = "fedavg" (or '
                '"fedprox") with secure_aggregation.clip_norm bounding every update instead'
            )
        for wrapper in self.aggregation.wrappers:
            raise ValueError(
                f"secure aggregation cannot run the wrapper {wrapper.name!r}: it reads each "
                "member's update; secure_aggregation.clip_norm clips every update locally instead"
            )
        if self.max_update_norm_ratio is not None:
            raise ValueError(
                "secure aggregation cannot run the norm-based update check "
                "(max_update_norm_ratio): update norms are hidden; remove it, "
                "secure_aggregation.clip_norm bounds every update instead"
            )
        if self.encoding.codec != "none":
            raise ValueError(
                f"secure aggregation cannot use the update encoding {self.encoding.codec!r}: "
                "masked updates have their own fixed-point encoding; remove encoding"
            )
        return self

    @field_validator("aggregation", mode="before")
    @classmethod
    def _rule_name_alone(cls, value: Any) -> Any:
        return {"rule": value} if isinstance(value, str) else value

    @field_validator("encoding", mode="before")
    @classmethod
    def _codec_name_alone(cls, value: Any) -> Any:
        return {"codec": value} if isinstance(value, str) else value

    def to_bytes(self) -> bytes:
        """Canonical JSON, so the same spec always has the same CID."""
        data = self.model_dump()
        if data["confidentiality"] == "none":  # specs written before the setting keep their CID
            del data["confidentiality"]
        if data["secure_aggregation"] is None:  # likewise
            del data["secure_aggregation"]
        if data["encoding"]["compress"] == "none":  # likewise
            del data["encoding"]["compress"]
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> TaskSpec:
        if len(data) > MAX_SPEC_BYTES:
            raise ProtocolError(f"task spec of {len(data)} bytes exceeds {MAX_SPEC_BYTES}")
        try:
            return cls.model_validate(json.loads(data))
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ProtocolError(f"task spec is invalid: {str(exc).splitlines()[0]}") from None
