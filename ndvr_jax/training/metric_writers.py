"""Scalar metrics to a JSONL file and TensorBoard event files (process 0 only).

A run resumed from step `s` continues both from `s`: rows after `s` that the interrupted run
wrote (and a line cut short by the kill) are dropped from `metrics.jsonl`, and TensorBoard
purges its events after `s`, so no step appears twice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import jax

from ndvr_jax.io.atomic import atomic_write


class MetricWriter:
    """Appends `{"step": s, **metrics}` lines to `metrics.jsonl` and TensorBoard events, after
    the rows up to `resume_step` that the file already holds."""

    def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True, resume_step: int = 0):
        self._active = jax.process_index() == 0
        self._jsonl = None
        self._tb = None
        if not self._active:
            return
        os.makedirs(workdir, exist_ok=True)
        path = os.path.join(workdir, "metrics.jsonl")
        _keep_rows_up_to(path, resume_step)
        self._jsonl = open(path, "a")  # noqa: SIM115
        if tensorboard:
            from tensorboardX import SummaryWriter

            purge = resume_step + 1 if os.path.isdir(os.path.join(workdir, "tensorboard")) else None
            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"), purge_step=purge)

    def write_scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        """Records scalar metrics for `step`."""
        if not self._active:
            return
        values = {k: float(v) for k, v in metrics.items()}
        self._jsonl.write(json.dumps({"step": int(step), **values}) + "\n")
        self._jsonl.flush()
        if self._tb is not None:
            for key, value in values.items():
                self._tb.add_scalar(key, value, int(step))

    def close(self) -> None:
        """Flushes and closes the files."""
        if self._jsonl is not None:
            self._jsonl.close()
        if self._tb is not None:
            self._tb.close()


def _keep_rows_up_to(path: str, step: int) -> None:
    """Rewrites the JSONL file at `path` (if any) with only its whole rows of steps <= `step`."""
    if not os.path.exists(path):
        return
    with open(path) as f:
        lines = f.read().splitlines()
    kept = [line for line in lines if (row_step := _step_of(line)) is not None and row_step <= step]
    if len(kept) != len(lines):
        with atomic_write(path) as f:
            f.write("".join(line + "\n" for line in kept))


def _step_of(line: str) -> int | None:
    """The step of one JSONL row, or None for a blank, cut or stepless line."""
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, float]]:
    """Reads back the JSONL metrics of a run."""
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
