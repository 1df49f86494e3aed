"""Helpers shared by several test modules."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """A folder this process cannot write to, even as root (a read-only mount then)."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(0o700)
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def install_plugin(
    root: Path, dist: str, group: str, entries: dict[str, str], module: str | None
) -> None:
    """An installed distribution as pip leaves it: ``<dist>-0.1.dist-info`` (METADATA and the
    ``group`` entry points) and, when given, the module ``<dist>.py``."""
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = [f"[{group}]"] + [f"{name} = {target}" for name, target in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    if module is not None:
        (root / f"{dist}.py").write_text(textwrap.dedent(module))


@contextlib.contextmanager
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site-packages folder on ``sys.path`` for :func:`install_plugin`; the test modules it
    held (``fedchain_test_*``) are forgotten afterwards."""
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.startswith("fedchain_test_")]:
        del sys.modules[name]
