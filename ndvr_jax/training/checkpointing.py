"""The only place Orbax is used: save the newest N checkpoints, find and restore the latest.

A checkpoint holds a pytree of arrays (`state`: params, optimiser state, step, rng) and a small
JSON dict (`meta`: whatever a trainer needs to resume exactly, e.g. the data position).

`restore_newest_good` resumes from the newest checkpoint that reads back and verifies (finite
floating leaves, the step it was saved at); each newer one that does not is logged with why and
moved aside to `<directory>_rejected/` (kept for inspection, out of the manager's way).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from absl import logging


class CheckpointError(ValueError):
    """No checkpoint of a run can be restored, or its folder cannot hold checkpoints."""


def check_folder(path: str | os.PathLike) -> None:
    """Raises `CheckpointError` if `path`, or the nearest part of it that exists, is a file."""
    path = Path(os.path.abspath(path))
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise CheckpointError(
            f"{existing} is a file, so nothing can be written to {path}: pass a --workdir that "
            "is a folder (or does not exist yet)"
        )


class Checkpointer:
    """Keeps the `max_to_keep` newest checkpoints of one run under `directory`."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        self.directory = Path(os.path.abspath(directory))
        check_folder(self.directory)
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta")
        )

    def latest_step(self) -> int | None:
        """Step of the newest finished checkpoint, or None."""
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        """Steps of the kept checkpoints, oldest first."""
        return sorted(self._manager.all_steps())

    def save(self, step: int, state: Any, meta: dict[str, Any] | None = None) -> None:
        """Saves (asynchronously) `state` and `meta` as checkpoint `step`."""
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta or {})
            ),
        )

    def restore(self, abstract_state: Any, step: int | None = None) -> tuple[Any, dict[str, Any]]:
        """Restores checkpoint `step` (default: latest) shaped and sharded like `abstract_state`."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise FileNotFoundError("no checkpoint to restore")
        restored = self._manager.restore(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardRestore(abstract_state), meta=ocp.args.JsonRestore()
            ),
        )
        return restored.state, dict(restored.meta or {})

    def restore_newest_good(self, abstract_state: Any) -> tuple[Any, dict[str, Any]] | None:
        """The newest checkpoint that restores and verifies (`_verify`), or None if there is none.

        Each newer one that fails is logged with why and moved aside; raises `CheckpointError`
        if checkpoints exist but none of them can be used.
        """
        steps = self.all_steps()
        for step in reversed(steps):
            try:
                state, meta = self.restore(abstract_state, step)
                problem = _verify(state, step)
            except Exception as e:  # noqa: BLE001 - Orbax/TensorStore raise many kinds on bad files
                problem = f"cannot be read ({_first_line(e)})"
            if problem is None:
                return state, meta
            self._reject(step, problem)
        if steps:
            raise CheckpointError(
                f"none of the checkpoints {steps} in {self.directory} can be restored (moved to "
                f"{self._rejected_dir()}); use a new --workdir, or delete them to start again"
            )
        return None

    def _rejected_dir(self) -> Path:
        return self.directory.with_name(self.directory.name + "_rejected")

    def _reject(self, step: int, problem: str) -> None:
        """Logs why checkpoint `step` is skipped and moves it out of the manager's folder."""
        target = self._rejected_dir() / f"{step}.{time.strftime('%Y%m%dT%H%M%S')}"
        logging.warning("skipping checkpoint %d: %s; moved to %s", step, problem, target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(self.directory / str(step), target)
        self._manager.reload()

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases resources."""
        self._manager.wait_until_finished()
        self._manager.close()


def _verify(state: Any, step: int) -> str | None:
    """Why a restored state cannot be trusted (non-finite floating leaf, other step), or None."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        value = np.asarray(jax.device_get(leaf))
        if np.issubdtype(value.dtype, np.inexact) and not np.isfinite(value).all():
            return f"non-finite values in {jax.tree_util.keystr(path)}"
    saved_step = getattr(state, "step", step)
    if int(np.asarray(saved_step)) != step:
        return f"it holds step {int(np.asarray(saved_step))}"
    return None


def _first_line(error: Exception) -> str:
    lines = str(error).strip().splitlines()
    return f"{type(error).__name__}: {lines[0][:200] if lines else ''}"
