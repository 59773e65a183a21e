"""Batch feature extraction for lists of videos: decode in threads, encode in fixed batches.

Frames of consecutive videos are packed into batches of one fixed size (padded at the very end),
so the jitted encoder compiles once and never waits on a short video. The batch axis is sharded
over every device of the mesh. Finished videos are written atomically; a rerun skips them; a bad
file is recorded in `failures.tsv` and the rest go on.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import nnx
from jax.sharding import Mesh

from ndvr_jax import sharding
from ndvr_jax.backbones import create_backbone, mac
from ndvr_jax.io import video as video_io
from ndvr_jax.io.atomic import atomic_write
from ndvr_jax.io.prefetch import prefetch_map
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.progress import Progress

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


class BatchEncoder:
    """Jitted `images uint8 [N, H, W, 3] -> features [N, D]`, run in fixed-size sharded batches."""

    def __init__(
        self,
        model: nnx.Module,
        pool: Callable[[Sequence[jax.Array]], jax.Array],
        mesh: Mesh,
        batch_size: int,
    ):
        sharding.check_batch_size(batch_size, mesh)
        self.batch_size = batch_size
        graphdef, state = nnx.split(model)
        self._state = sharding.replicate(state, mesh)

        def encode(state, images):
            activations = nnx.merge(graphdef, state)(images.astype(jnp.float32))
            return pool(activations).astype(jnp.float32)

        self._encode = jax.jit(
            encode,
            in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
            out_shardings=sharding.batch_sharded(mesh),
        )

    def encode_batch(self, images: np.ndarray) -> jax.Array:
        """Encodes up to `batch_size` images (padded to exactly that); returns a device array."""
        n = len(images)
        if n < self.batch_size:
            pad = np.zeros((self.batch_size - n, *images.shape[1:]), images.dtype)
            images = np.concatenate([images, pad])
        return self._encode(self._state, images)[:n]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Encodes any number of images."""
        outputs = [
            self.encode_batch(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate([np.asarray(o) for o in outputs])


@dataclasses.dataclass
class _Video:
    video_id: str
    path: str
    data: Any  # the decoded result; must have `.frames`
    features: list[np.ndarray] = dataclasses.field(default_factory=list)
    remaining: int = 0


@dataclasses.dataclass
class ExtractionSummary:
    """What an extraction run did."""

    done: list[str]
    skipped: list[str]
    failed: dict[str, str]  # id -> reason

    def __str__(self) -> str:
        reasons: dict[str, int] = {}
        for reason in self.failed.values():
            reasons[reason] = reasons.get(reason, 0) + 1
        detail = ", ".join(f"{k}: {v}" for k, v in sorted(reasons.items()))
        return (
            f"extracted {len(self.done)}, already done {len(self.skipped)}, "
            f"failed {len(self.failed)}" + (f" ({detail})" if detail else "")
        )


def extract_to_store(
    entries: Sequence[tuple[str, str]],
    load: Callable[[str], Any],
    encoder: BatchEncoder,
    store: FeatureStore,
    describe: Callable[[Any], dict[str, Any]],
    num_workers: int = 2,
    failures_name: str = "failures.tsv",
) -> ExtractionSummary:
    """Extracts features of `(id, path)` entries into `store`, resuming and logging failures.

    `load(path)` decodes a file into an object with `.frames` (raising an exception with a
    `reason` attribute for bad files); `describe(loaded)` gives the sidecar metadata.
    """
    skipped = [v for v, _ in entries if store.is_complete(v)]
    todo = [(v, p) for v, p in entries if v not in set(skipped)]
    summary = ExtractionSummary(done=[], skipped=skipped, failed={})
    failure_rows: list[str] = []
    progress = Progress(len(todo), "extract", "videos")
    queue: list[_Video] = []
    buffer: list[np.ndarray] = []
    buffered = 0

    def finish(video: _Video) -> None:
        started = time.perf_counter()
        features = np.concatenate(video.features) if video.features else np.zeros((0, 0))
        store.write(
            video.video_id,
            features,
            {"id": video.video_id, "source": video.path, **describe(video.data)},
        )
        summary.done.append(video.video_id)
        progress.update(1, frames=len(features))
        logging.debug("wrote %s in %.3fs", video.video_id, time.perf_counter() - started)

    def run_batch(take: int) -> None:
        nonlocal buffer, buffered
        stacked = np.concatenate(buffer)
        images, rest = stacked[:take], stacked[take:]
        buffer, buffered = ([rest] if len(rest) else []), len(rest)
        features = np.asarray(encoder.encode_batch(images))
        offset = 0
        while offset < len(features):
            video = queue[0]
            n = min(video.remaining, len(features) - offset)
            video.features.append(features[offset : offset + n])
            video.remaining -= n
            offset += n
            if video.remaining == 0:
                finish(queue.pop(0))

    for (video_id, path), loaded in prefetch_map(lambda e: load(e[1]), todo, num_workers):
        if isinstance(loaded, Exception):
            reason = getattr(loaded, "reason", type(loaded).__name__)
            summary.failed[video_id] = reason
            failure_rows.append(f"{video_id}\t{path}\t{reason}\t{_one_line(loaded)}\n")
            logging.warning("skipping %s: %s", video_id, loaded)
            progress.update(1)
            continue
        video = _Video(video_id, path, loaded, remaining=len(loaded.frames))
        queue.append(video)
        buffer.append(np.asarray(loaded.frames))
        buffered += len(loaded.frames)
        while buffered >= encoder.batch_size:
            run_batch(encoder.batch_size)
    while queue:
        run_batch(buffered) if buffered else finish(queue.pop(0))

    with atomic_write(store.root / failures_name) as f:
        f.write("".join(failure_rows))
    return summary


def describe_video(config, decoded: video_io.DecodedVideo) -> dict:
    """Sidecar metadata of one decoded video."""
    return {
        "timestamps": [round(float(t), 6) for t in decoded.timestamps],
        "duration": decoded.duration,
        "source_fps": decoded.source_fps,
        "codec": decoded.codec,
        "container": decoded.container,
        "backbone": config.backbone,
        "weights": str(config.weights),
        "fps": config.fps,
        "size": config.size,
        "resize": config.resize,
        "dtype": config.dtype,
    }


def extract_visual(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the visual features of every video of `video_list` (this process's share)."""
    sharding.maybe_initialize_distributed(config.distributed)
    entries = sharding.process_share(read_id_path_list(video_list))
    mesh = sharding.make_mesh(config.num_devices)
    model = create_backbone(config.backbone, weights=config.weights, dtype=DTYPES[config.dtype])
    encoder = BatchEncoder(model, mac, mesh, config.batch_size)
    store = FeatureStore(output_dir, config.layout)
    decode = functools.partial(
        video_io.decode_video, fps=config.fps, size=config.size, mode=config.resize
    )
    summary = extract_to_store(
        entries,
        decode,
        encoder,
        store,
        functools.partial(describe_video, config),
        num_workers=config.num_workers,
        failures_name=f"failures{_process_suffix()}.tsv",
    )
    finished = [v for v, _ in entries if v in set(summary.done) | set(summary.skipped)]
    store.write_list(finished, f"feature_files{_process_suffix()}.txt")
    return summary


def _process_suffix() -> str:
    return "" if jax.process_count() == 1 else f".{jax.process_index()}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
