"""Attention fusion over whichever modality embeddings are present.

Each configured modality has its own encoder. For a batch, the encoders of the modalities in
the input produce embeddings; a learned modality tag is added to each so attention can tell
them apart; an attention score per (sample, modality) is soft-maxed over the modalities that
sample has, and the weighted sum feeds the task head. Absent modalities simply take no part,
so any non-empty subset works at training and at inference.

Modality dropout (training only): each present modality of each sample is hidden with
probability ``modality_dropout``, always keeping at least one, so the model learns not to lean
on a modality some institutions lack.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from fedchain.errors import ConfigError, DataError
from models.nets.encoders import build_encoder

ENCODER_PREFIX = "encoders."


class AttentionFusion(nn.Module):
    """Multi-modal classifier; ``modalities`` maps a name to ``{"kind": ..., **encoder_kwargs}``."""

    def __init__(
        self,
        modalities: Mapping[str, Mapping[str, Any]],
        num_classes: int,
        embed_dim: int = 64,
        modality_dropout: float = 0.0,
        head_hidden: int = 64,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if not modalities:
            raise ConfigError("fusion model needs at least one modality")
        if num_classes < 2:
            raise ConfigError(f"fusion model needs num_classes >= 2, got {num_classes}")
        if not 0.0 <= modality_dropout < 1.0:
            raise ConfigError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.names: tuple[str, ...] = tuple(sorted(modalities))
        encoders: dict[str, nn.Module] = {}
        for name in self.names:
            if not name.isidentifier():
                raise ConfigError(f"modality name {name!r} must be a Python identifier")
            spec = dict(modalities[name])
            kind = spec.pop("kind", None)
            if not isinstance(kind, str):
                raise ConfigError(f"modality {name!r} needs a 'kind' (tabular, signal or image)")
            encoders[name] = build_encoder(kind, embed_dim=embed_dim, **spec)
        self.encoders = nn.ModuleDict(encoders)
        # An embedding table (zeros, no random draw) rather than a bare Parameter: every
        # trainable tensor then sits in a standard layer, whose per-sample gradients DP-SGD
        # (Opacus) knows how to compute.
        self.modality_tags = nn.Embedding(
            len(self.names), embed_dim, _weight=torch.zeros(len(self.names), embed_dim)
        )
        self.attn_project = nn.Linear(embed_dim, embed_dim)
        self.attn_score = nn.Linear(embed_dim, 1, bias=False)
        self.norm = nn.LayerNorm(embed_dim)
        self.head = nn.Sequential(
            nn.Linear(embed_dim, head_hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(head_hidden, num_classes),
        )
        self.modality_dropout = modality_dropout

    def encoder_prefix(self, modality: str) -> str:
        """State-dict key prefix of one modality's encoder (used by modality-aware averaging)."""
        return f"{ENCODER_PREFIX}{modality}."

    def _present(self, inputs: Mapping[str, torch.Tensor]) -> list[str]:
        unknown = sorted(set(inputs) - set(self.names))
        if unknown:
            raise DataError(f"fusion model got unknown modalities {unknown}; it knows {self.names}")
        present = [name for name in self.names if name in inputs]
        if not present:
            raise DataError(f"fusion model needs at least one of {list(self.names)}")
        return present

    def _dropout_mask(self, n: int, m: int, device: torch.device) -> torch.Tensor:
        keep = torch.rand(n, m, device=device) >= self.modality_dropout
        none_kept = ~keep.any(dim=1)
        if bool(none_kept.any()):
            rescue = torch.randint(0, m, (int(none_kept.sum()),), device=device)
            keep[none_kept.nonzero(as_tuple=True)[0], rescue] = True
        return keep

    def _tag(self, name: str, n: int) -> torch.Tensor:
        """The learned tag of modality ``name``, one row per sample ``[n, embed]``."""
        index = torch.full(
            (n,), self.names.index(name), dtype=torch.long, device=self.modality_tags.weight.device
        )
        return self.modality_tags(index)  # type: ignore[no-any-return]

    def embed(self, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Fused embedding ``[n, embed_dim]`` and attention weights ``[n, present modalities]``."""
        present = self._present(inputs)
        n = inputs[present[0]].shape[0]
        embeddings = torch.stack(
            [self.encoders[name](inputs[name]) + self._tag(name, n) for name in present], dim=1
        )  # [n, m, embed]
        scores = self.attn_score(torch.tanh(self.attn_project(embeddings))).squeeze(-1)
        if self.training and self.modality_dropout > 0 and len(present) > 1:
            keep = self._dropout_mask(scores.shape[0], scores.shape[1], scores.device)
            scores = scores.masked_fill(~keep, float("-inf"))
        weights = torch.softmax(scores, dim=1)
        fused = torch.einsum("nm,nme->ne", weights, embeddings)
        return self.norm(fused), weights

    def forward(self, inputs: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if not isinstance(inputs, Mapping):
            raise DataError("fusion model takes a mapping {modality: tensor}, not a bare tensor")
        fused, _ = self.embed(inputs)
        return self.head(fused)  # type: ignore[no-any-return]


class UnimodalClassifier(nn.Module):
    """One encoder and a head, taking a bare tensor (the single-modality baselines)."""

    def __init__(
        self,
        encoder_kind: str,
        num_classes: int,
        embed_dim: int = 64,
        dropout: float = 0.1,
        **encoder: Any,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ConfigError(f"classifier needs num_classes >= 2, got {num_classes}")
        self.encoder = build_encoder(encoder_kind, embed_dim=embed_dim, **encoder)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(embed_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # type: ignore[no-any-return]
