"""Scalar metrics to a JSONL file and TensorBoard event files (process 0 only)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

import jax


class MetricWriter:
    """Appends `{"step": s, **metrics}` lines to `metrics.jsonl` and TensorBoard events."""

    def __init__(self, workdir: str | os.PathLike, tensorboard: bool = True):
        self._active = jax.process_index() == 0
        self._jsonl = None
        self._tb = None
        if not self._active:
            return
        os.makedirs(workdir, exist_ok=True)
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a")  # noqa: SIM115
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

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


def read_metrics(workdir: str | os.PathLike) -> list[dict[str, float]]:
    """Reads back the JSONL metrics of a run."""
    path = os.path.join(workdir, "metrics.jsonl")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
