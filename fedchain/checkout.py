"""Where the source checkout is, for the consortium's development tools.

The devnet, the contract build and the contract audit run from a clone of the repository
(they need ``contracts/``, ``node_modules/`` and ``scripts/``); an institution's peer never
does: it reads the contract ABI shipped inside the package.
"""

from __future__ import annotations

from pathlib import Path

SOURCE_ROOT = Path(__file__).resolve().parents[1]
"""The repository root when fedchain is installed from a checkout (``pip install -e .``)."""
