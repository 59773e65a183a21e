"""The only place Orbax is used: save the newest N checkpoints, find and restore the latest.

A checkpoint holds a pytree of arrays (`state`: params, optimiser state, step, rng) and a small
JSON dict (`meta`: whatever a trainer needs to resume exactly, e.g. the data position).
"""

from __future__ import annotations

import os
from typing import Any

import orbax.checkpoint as ocp


class Checkpointer:
    """Keeps the `max_to_keep` newest checkpoints of one run under `directory`."""

    def __init__(self, directory: str | os.PathLike, max_to_keep: int = 3):
        options = ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True)
        self._manager = ocp.CheckpointManager(
            os.path.abspath(directory), options=options, item_names=("state", "meta")
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

    def wait(self) -> None:
        """Blocks until pending asynchronous saves are on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        """Finishes pending saves and releases resources."""
        self._manager.wait_until_finished()
        self._manager.close()
