# fedchain: every target installs what it needs first (idempotent, pinned versions).
#   make demo   - start a local federation (chain, one Kubo per hospital, peers) and run rounds
#   make test   - lint, type-check and run the test suite through the real parts
#   make audit  - contract audit (compiler warnings, Slither, forge fuzz/invariants) -> audit/report.md

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_PY := $(VENV)/.fedchain-installed
STAMP_NPM := node_modules/.fedchain-installed
STAMP_AUDIT := .venv-audit/.fedchain-installed
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: setup demo test lint typecheck pytest audit audit-env clean

setup: $(STAMP_PY) $(STAMP_NPM) .fedchain/ipfs-path

$(STAMP_PY): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fedchain needs Python >= 3.11 (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $@

$(STAMP_NPM): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

.fedchain/ipfs-path: scripts/install-kubo
	@mkdir -p .fedchain
	scripts/install-kubo | tail -n 1 > $@.tmp && mv $@.tmp $@
	@echo "Kubo: $$(cat $@)"

# geth for `--chain geth` (`make demo` builds it only when DEMO_ARGS ask for geth) and its
# conformance run in `make test`; a cold cache builds it (~8 min). If that fails the file
# says so and the geth tests skip with that reason (delete it to retry).
.fedchain/geth-path: scripts/install-geth
	@mkdir -p .fedchain
	set -o pipefail; scripts/install-geth | tail -n 1 > $@.tmp || echo "unavailable: scripts/install-geth failed" > $@.tmp
	@mv $@.tmp $@
	@echo "geth: $$(cat $@)"

# Slither's own venv (it needs web3 < 8), so that `make test` runs the Slither test too.
audit-env: $(STAMP_AUDIT)

$(STAMP_AUDIT): audit/requirements.txt $(STAMP_PY)
	$(PY) -c 'import pathlib, fedchain.audit.slither as s; s.ensure_slither(pathlib.Path("."), print)'
	@touch $@

demo: setup $(if $(findstring geth,$(DEMO_ARGS)),.fedchain/geth-path)
	FEDCHAIN_IPFS="$$(cat .fedchain/ipfs-path)" $(VENV)/bin/fedchain demo $(DEMO_ARGS)

lint: $(STAMP_PY)
	$(VENV)/bin/ruff check .

typecheck: $(STAMP_PY)
	$(VENV)/bin/mypy fedchain peer consensus models

# The dashboard's browser tests drive Debian's Chromium; the file says "none" when it cannot be
# had here, and those tests then skip saying so.
.fedchain/chromium-path: scripts/install-chromium
	@mkdir -p .fedchain
	scripts/install-chromium | tail -n 1 > $@.tmp || true
	@mv $@.tmp $@
	@echo "Chromium: $$(cat $@)"

pytest: setup $(STAMP_AUDIT) .fedchain/chromium-path .fedchain/geth-path
	FEDCHAIN_IPFS="$$(cat .fedchain/ipfs-path)" $(PY) -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The audit needs the Python venv (it creates Slither's own .venv-audit) and the npm tools
# (solc, forge), not Kubo.
audit: $(STAMP_PY) $(STAMP_NPM)
	$(VENV)/bin/fedchain audit

clean:
	rm -rf $(VENV) .venv-audit node_modules .fedchain build .mypy_cache .ruff_cache .pytest_cache
