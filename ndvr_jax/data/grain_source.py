"""Training batches of a random-access source through grain: shuffled epochs, per-process rows.

A source is any random-access sequence (`__len__`, `__getitem__`): a list in memory, or
`tfds.data_source(...)` of the toolkit's TFDS builders (`ndvr_jax.data.tfds_builders`, no
TensorFlow). `EpochBatches` reads an endless stream in which every element comes once per epoch,
in a new order each epoch (grain's seeded shuffle: deterministic, so a resumed run sees the same
data), through a per-element `transform(element, rng)` (grain's `random_map`: `rng` depends on
the seed and the stream position only). Global batch `s` is stream rows `s·B … s·B + B - 1`;
with n processes, process i reads only its contiguous share of it (stream rows `s·B + i·B/n …`),
so each process loads only its own examples and the processes' shares of an epoch are disjoint
and cover it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import grain
import jax
import numpy as np

Transform = Callable[[Any, np.random.Generator], Any]


def tfds_source(name: str, split: str, data_dir: str) -> Sequence[dict[str, Any]]:
    """`tfds.data_source` of one of the toolkit's TFDS builders (registered on import)."""
    import tensorflow_datasets as tfds

    from ndvr_jax.data import tfds_builders  # noqa: F401  (registers the builders)

    return tfds.data_source(name, split=split, data_dir=data_dir)


def example_id(example: Any) -> str:
    """An example's `"id"` as str (TFDS gives bytes)."""
    value = example["id"]
    return value.decode() if isinstance(value, bytes) else str(value)


def epoch_stream(source: Sequence[Any], seed: int, transform: Transform) -> grain.MapDataset:
    """The endless stream: epoch after epoch of `source`, each a new shuffle, transformed."""
    return grain.MapDataset.source(source).seed(seed).shuffle().repeat().random_map(transform)


class EpochBatches:
    """Global batches by step of shuffled epochs of `source`, and this process's rows of them.

    `processes` / `process_index` default to JAX's; `batch_size` must divide by `processes`.
    A batch may straddle two epochs when `batch_size` does not divide `len(source)`.
    """

    def __init__(
        self,
        source: Sequence[Any],
        batch_size: int,
        seed: int,
        transform: Transform,
        processes: int | None = None,
        process_index: int | None = None,
    ):
        self.processes = jax.process_count() if processes is None else processes
        self.process_index = jax.process_index() if process_index is None else process_index
        if batch_size % self.processes:
            raise ValueError(
                f"batch size {batch_size} does not divide by {self.processes} processes"
            )
        if not len(source):
            raise ValueError("the training source is empty")
        self.num_examples = len(source)
        stream = epoch_stream(source, seed, transform)
        self._global = stream.batch(batch_size, drop_remainder=True)
        self._local = stream.batch(batch_size // self.processes, drop_remainder=True)

    def batch(self, step: int) -> Any:
        """The global batch of `step` (every process's rows)."""
        return self._global[step]

    def process_batch(self, step: int) -> Any:
        """This process's contiguous rows of `batch(step)`, loading only those elements."""
        return self._local[step * self.processes + self.process_index]
