"""Consortium set-up outside the demo: deploy the contract, create a task.

These are the steps a consortium performs once, each with its own keys; the
demo's :mod:`fedchain.localnet.devnet` does the same steps for a throw-away local federation.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from consensus.protocol import default_quorum
from consensus.task_spec import TaskSpec
from fedchain.errors import ConfigError
from peer.content.abc import ContentStore
from peer.content.cid import cid_to_bytes
from peer.content.kubo import KuboContentStore
from peer.keystore import load_eth_account
from peer.ledger.abc import FederationLedger
from peer.ledger.client import FederationClient, connect, deploy
from peer.ledger.errors import QuorumNotMajority

log = logging.getLogger("fedchain.consortium")


class Founder(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(pattern=r"^0x[0-9a-fA-F]{40}$")
    peer_id: str = Field(min_length=8, max_length=128)
    encryption_key: str | None = Field(default=None, pattern=r"^(0x)?[0-9a-fA-F]{64}$")
    """The X25519 public key `fedchain init` printed (members-only weights)."""


class FoundersFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    founders: list[Founder] = Field(min_length=1)
    approval_bps: int = Field(default=5001, ge=1, le=10_000)
    audit_key: str | None = Field(default=None, pattern=r"^(0x)?[0-9a-fA-F]{64}$")
    """The federation's audit X25519 public key; with it every founder needs a key."""


def read_founders(path: Path) -> FoundersFile:
    """``{"founders": [{"address": ..., "peer_id": ...}], "approval_bps": 5001}``."""
    try:
        return FoundersFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ConfigError(f"founders file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"founders file {path} is not valid JSON: {exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"founders file {path}: [{where}] {first['msg']}") from None


def deploy_federation(rpc_url: str, keystore: Path, password: str, founders: Path) -> str:
    spec = read_founders(founders)
    keys = founder_keys(spec)
    account = load_eth_account(keystore, password)
    w3 = connect(rpc_url)
    client = deploy(
        w3,
        account,
        [f.address for f in spec.founders],
        [f.peer_id for f in spec.founders],
        spec.approval_bps,
        **keys,
    )
    return client.address


def founder_keys(spec: FoundersFile) -> dict[str, Any]:
    """``encryption_keys`` and ``audit_key`` for :func:`deploy` (none when the file has none)."""
    from fedchain.governance import parse_public_key

    given = [f.encryption_key for f in spec.founders if f.encryption_key]
    if not given and spec.audit_key is None:
        return {}
    if spec.audit_key is None or len(given) != len(spec.founders):
        raise ConfigError(
            "founders file: members-only weights need an audit_key and every founder's "
            "encryption_key (or neither)"
        )
    return {
        "encryption_keys": [
            parse_public_key(f.encryption_key or "", f"founder {f.address} encryption_key")
            for f in spec.founders
        ],
        "audit_key": parse_public_key(spec.audit_key, "audit_key"),
    }


@dataclass(frozen=True)
class TaskTerms:
    """What the members agree on-chain about a task besides its spec."""

    rounds: int
    quorum: int | None
    """None: :func:`default_quorum` of the members when the task is created."""
    round_duration: int = 600
    attest_duration: int = 600
    max_samples: int = 1000


@dataclass(frozen=True)
class PublishedTask:
    task_id: int
    spec_cid: str
    model_cid: str
    quorum: int


def publish_task(
    creator: FederationLedger,
    store: ContentStore,
    spec: TaskSpec,
    initial: Mapping[str, torch.Tensor],
    terms: TaskTerms,
) -> PublishedTask:
    """Add the spec and initial model to the creator's content store, then create the task.

    The one way a task is published (the CLI's ``create-task`` and the local devnet both call
    it), so a spec always has the same CID and a bad quorum the same explanation.
    """
    from consensus.serialization import weights_to_bytes

    spec_cid = store.add(spec.to_bytes())
    model_cid = store.add(weights_to_bytes(dict(initial)))
    quorum = terms.quorum if terms.quorum is not None else default_quorum(creator.member_count())
    try:
        task_id = creator.create_task(
            cid_to_bytes(spec_cid),
            cid_to_bytes(model_cid),
            quorum,
            terms.round_duration,
            terms.attest_duration,
            terms.rounds,
            terms.max_samples,
        )
    except QuorumNotMajority as exc:
        members = int(exc.args_by_name.get("members", 0))
        raise ConfigError(
            f"--quorum {quorum} is not a strict majority of the federation's {members} members; "
            f"use at least {members // 2 + 1}, or omit --quorum for {default_quorum(members)}"
        ) from None
    log.info("task %d: quorum %d, spec %s, initial model %s", task_id, quorum, spec_cid, model_cid)
    return PublishedTask(task_id, spec_cid, model_cid, quorum)


def create_task(
    rpc_url: str,
    contract: str,
    keystore: Path,
    password: str,
    ipfs_api: str,
    spec_path: Path,
    initial_model: Path | None,
    terms: TaskTerms,
) -> int:
    """Read the spec (and an optional initial model) from files and publish the task."""
    from consensus.serialization import weights_from_bytes
    from models.tasks import initial_weights, reference_weights

    try:
        spec = TaskSpec.from_bytes(spec_path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(f"task spec {spec_path} does not exist") from None
    if initial_model is not None:
        weights = weights_from_bytes(initial_model.read_bytes(), reference=reference_weights(spec))
    else:
        weights = initial_weights(spec)
    client = FederationClient(connect(rpc_url), contract, load_eth_account(keystore, password))
    with KuboContentStore(ipfs_api) as store:
        return publish_task(client, store, spec, weights, terms).task_id
