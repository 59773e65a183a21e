#!/usr/bin/env bash
# Installs ndvr-jax into .venv and runs the main job on the embedded demo benchmark.
#   bash scripts/demo.sh [--config.key=value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[demo]'
.venv/bin/python -m pip install -q --no-deps musicnn==0.1.0  # audio CNN weights; its declared deps are obsolete
exec .venv/bin/python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run "$@"
