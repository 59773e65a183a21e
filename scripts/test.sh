#!/usr/bin/env bash
# Installs ndvr-jax with its test extras into .venv and runs the test suite in pytest-xdist
# workers, one per core up to 4 (PYTEST_WORKERS=N to choose; 0 runs in-process).
#   bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/python -m pip install -q --no-deps musicnn==0.1.0  # audio CNN weights; its declared deps are obsolete
.venv/bin/ruff check .
cores=$(nproc)
exec .venv/bin/python -m pytest -q -n "${PYTEST_WORKERS:-$((cores < 4 ? cores : 4))}" "$@"
