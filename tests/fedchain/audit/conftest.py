"""A forge run of the Solidity suite (fast profile), shared by the tests that read its output.

Outputs go to a fresh folder under ``audit/out/`` (forge may write only there, see
``fs_permissions`` in foundry.toml) and are removed afterwards.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fedchain.audit.forge_tests import ForgeTests
from fedchain.audit.types import AuditSettings, PartResult
from fedchain.checkout import SOURCE_ROOT

REPO = SOURCE_ROOT


@dataclass(frozen=True)
class ForgeRun:
    settings: AuditSettings
    result: PartResult
    progress: list[str]


@pytest.fixture(scope="session")
def audit_out() -> Iterator[Path]:
    out = REPO / "audit" / "out" / f"pytest-{uuid.uuid4().hex[:8]}"
    out.mkdir(parents=True)
    yield out
    shutil.rmtree(out, ignore_errors=True)


@pytest.fixture(scope="session")
def forge_run(audit_out: Path) -> ForgeRun:
    if not (REPO / "node_modules" / ".bin" / "forge").exists():
        pytest.fail("forge is not installed: run `make setup` (npm ci)")
    settings = AuditSettings(repo=REPO, out_dir=audit_out, fast=True)
    lines: list[str] = []
    return ForgeRun(settings, ForgeTests().run(settings, lines.append), lines)
