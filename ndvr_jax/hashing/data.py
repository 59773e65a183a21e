"""Labelled videos as random-access sources, fixed-length clips, and grain pipelines over them.

A source is any random-access sequence of examples `{"id": str | bytes, "features": [n, D]
float32, "label": int}` (label -1 = no class): a list in memory, or `tfds.data_source(...)` of
the toolkit's TFDS builders (`ndvr_jax.data.tfds_builders`, no TensorFlow). Training reads
global batches by step from the shared grain stream (`ndvr_jax.data.grain_source`: shuffled
anew each epoch, deterministic, so a resumed run sees the same data); encoding reads each
process's share in order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import grain
import numpy as np

from ndvr_jax.data.grain_source import epoch_stream
from ndvr_jax.data.grain_source import example_id as video_id

__all__ = [
    "Example", "clip", "labels_of", "process_batches", "to_clip", "training_dataset", "video_id"
]  # fmt: skip
Example = Mapping[str, Any]


def clip(features: np.ndarray, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """`[max_frames, D]` frames and a `[max_frames]` mask: zero-padded, or evenly subsampled
    when the video is longer."""
    features = np.asarray(features, np.float32)
    n = len(features)
    if n > max_frames:
        features = features[np.linspace(0, n - 1, max_frames).round().astype(int)]
    frames = np.zeros((max_frames, features.shape[1]), np.float32)
    frames[: len(features)] = features
    return frames, np.arange(max_frames) < len(features)


def to_clip(example: Example, max_frames: int) -> dict[str, np.ndarray]:
    """A fixed-shape training/encoding record of one example."""
    frames, mask = clip(example["features"], max_frames)
    return {"frames": frames, "mask": mask, "label": np.int32(example["label"])}


def training_dataset(
    source: Sequence[Example], batch_size: int, max_frames: int, seed: int
) -> grain.MapDataset:
    """Infinite global batches: `dataset[step]` is the batch of `step`; each epoch is a new
    shuffle of every example (batches may straddle epochs)."""
    clips = epoch_stream(source, seed, lambda example, rng: to_clip(example, max_frames))
    return clips.batch(batch_size, drop_remainder=True)


class _IndexedClips:
    """Random-access clips of a source, each with its source row (a grain data source)."""

    def __init__(self, source: Sequence[Example], max_frames: int):
        self.source, self.max_frames = source, max_frames

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        return {**to_clip(self.source[index], self.max_frames), "index": np.int64(index)}


def process_batches(
    source: Sequence[Example],
    batch_size: int,
    max_frames: int,
    shard_options: grain.sharding.ShardOptions | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """This process's share of `source` (rows shard_index, shard_index + shard_count, ...) in
    order and in batches (the last one may be smaller), with each example's source row in
    `"index"`. Default sharding: by JAX process.

    (A grain `DataLoader` would drop the last row of the larger shards when the rows do not
    divide evenly: it sizes every shard as len // shard_count.)
    """
    shard = shard_options or grain.sharding.ShardByJaxProcess()
    dataset = grain.MapDataset.source(_IndexedClips(source, max_frames))
    return iter(dataset[shard.shard_index :: shard.shard_count].batch(batch_size))


def labels_of(source: Sequence[Example]) -> np.ndarray:
    """[N] int32 labels of every example."""
    return np.array([int(source[i]["label"]) for i in range(len(source))], np.int32)
