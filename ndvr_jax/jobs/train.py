"""The task registry of the one `train` binary: `config.task` names a system's training entry.

Each entry is `run_training(config, workdir) -> dict` of a system's `training` module: it builds
that system's `ndvr_jax.training.loop.TrainTask` from the config, trains through the shared loop
(checkpoints and resume in `workdir`, NaN guard, metrics, progress), writes the trained model
into `workdir` and returns a summary. Entries are imported by name on use, so the binary loads
only the system it trains.
"""

from __future__ import annotations

import importlib
from typing import Any

import ml_collections

TASKS = {
    "dml": "ndvr_jax.dml.training",
    "dml_selfsup": "ndvr_jax.dml.selfsup",
    "ausil": "ndvr_jax.ausil.training",
    "transition": "ndvr_jax.pdvr.training",
    "hashing": "ndvr_jax.hashing.training",
}


def run_task(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains `config.task` into `workdir`; returns the task's summary."""
    task = config.get("task")
    if task not in TASKS:
        raise ValueError(f"config.task must be one of {sorted(TASKS)}, got {task!r}")
    return importlib.import_module(TASKS[task]).run_training(config, workdir)
