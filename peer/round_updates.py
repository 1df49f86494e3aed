"""A round's update set, as every honest peer must see it: fetched and checked.

``accepted`` keeps chain order (the scores and claims are built over it);
:func:`consensus.round_decision.decide_round` hands the rule the canonical digest order.

The same function serves the live round (aggregate and attest) and the rebuild
of past rounds' scores (claims after a crash), so both reach the verdicts the
federation agreed on.  Each update is left out with its reason when the chain
alone shows it is a free ride or a copy (:mod:`consensus.checks`), when its
content cannot be fetched within the limit, or when the bytes are not a model of
the task's shapes and dtypes with finite, not all-zero values.

Updates are decoded with the task's agreed encoding (:mod:`consensus.codecs.pipeline`) before
any of these checks: an encoded update stands for the round's global model plus its decoded
change, and one that is malformed, oversized or encoded otherwise than agreed is left out with
the decoder's reason.  An encoded change that is zero everywhere is the global model sent back
(a free rider): with encodings the chain-only digest rule cannot see it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch

from consensus.checks import SubmittedDigest, all_zero, chain_verdicts, largest_magnitude
from consensus.codecs.pipeline import UpdateEncoding, build_encoding
from consensus.strategies.abc import Update
from fedchain.errors import (
    ContentError,
    ContentTooLarge,
    ProtocolError,
    ServiceUnavailableError,
)
from peer.content.cid import Cid
from peer.ledger.types import Submission
from peer.updates import ContentFetcher


def unchanged(weights: Mapping[str, torch.Tensor], previous: Mapping[str, torch.Tensor]) -> bool:
    return all(torch.equal(weights[k], previous[k]) for k in weights)


@dataclass
class RoundUpdates:
    """What a peer accepted from one round, and why it left the others out."""

    accepted: list[Update] = field(default_factory=list)
    """In chain order."""
    digests: dict[str, bytes] = field(default_factory=dict)
    """Update digest of each accepted member."""
    left_out: dict[str, str] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)
    """Members left out only because their content did not arrive (not a verdict on it)."""


def collect_updates(
    submissions: list[Submission],
    model_digest: bytes,
    fetcher: ContentFetcher,
    reference: Mapping[str, torch.Tensor],
    *,
    max_samples: int,
    max_abs_weight: float,
    encoding: UpdateEncoding | None = None,
    global_model: Callable[[], Mapping[str, torch.Tensor]] | None = None,
) -> RoundUpdates:
    """Fetch, decode and check every submission; ServiceUnavailableError (own Kubo down)
    propagates.

    ``encoding`` is the task's (default: none, the plain model); any other needs
    ``global_model``, called once before the first update is decoded (its failure is the
    caller's, never held against a member).
    """
    encoding = encoding or build_encoding()
    limit = encoding.max_bytes(reference)
    out = RoundUpdates()
    out.left_out.update(
        chain_verdicts([SubmittedDigest(s.member, s.digest) for s in submissions], model_digest)
    )
    wanted = [s for s in submissions if s.member not in out.left_out]
    for sub in wanted:  # start every fetch at once; they are checked in chain order
        fetcher.prefetch(Cid.from_bytes(sub.cid).text, max_bytes=limit)
    previous: Mapping[str, torch.Tensor] | None = None
    if wanted and not encoding.plain:
        if global_model is None:
            raise ValueError("encoded updates need the round's global model to be decoded")
        previous = global_model()
    for sub in wanted:
        try:
            data = fetcher.fetch_verified(Cid.from_bytes(sub.cid).text, max_bytes=limit)
            weights = encoding.decode(data, previous, reference)
            if previous is not None and unchanged(weights, previous):
                raise ProtocolError(
                    "free rider: the encoded change is zero everywhere (the global model unchanged)"
                )
            if all_zero(weights):
                raise ProtocolError("every weight is zero: nothing was learned")
            largest = largest_magnitude(weights)
            if largest > max_abs_weight:
                raise ProtocolError(
                    f"a weight of magnitude {largest:.3g} exceeds the task's bound "
                    f"{max_abs_weight:.3g} (max_abs_weight in the task spec)"
                )
        except ServiceUnavailableError:
            raise
        except ProtocolError as exc:
            out.left_out[sub.member] = str(exc)
            continue
        except ContentError as exc:
            out.left_out[sub.member] = str(exc)
            if not isinstance(exc, ContentTooLarge):
                out.unavailable.append(sub.member)
            continue
        bounded = min(sub.num_samples, max_samples)
        out.accepted.append(Update(member=sub.member, weights=weights, num_samples=bounded))
        out.digests[sub.member] = sub.digest
    return out
