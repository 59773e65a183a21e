"""Batch feature extraction for lists of videos: decode in threads, encode in fixed batches.

Frames (visual mode, here) or Mel-spectrogram windows (audio mode, `ndvr_jax.audio_extraction`)
of consecutive videos are packed into batches of one fixed size (padded at the very end), so the
jitted encoder compiles once and never waits on a short video. The batch axis is sharded over
every device of the mesh. Finished videos are written atomically; a rerun skips them; a bad file
is recorded in `failures.tsv` and the rest go on.

`failures.tsv` has one `<id>\\t<path>\\t<reason>\\t<message>` line per video without features.
Reasons: `missing` / `unreadable` (the file cannot be opened or decoded; nothing is stored, a
rerun tries again) and, in audio mode, `no_audio_stream` / `silent` (stored with zero segments;
see `ndvr_jax.audio_extraction`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
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


# Images per device that `micro_batch="auto"` runs the backbone on at a time on CPU, where
# small steps keep each layer's activations in cache: at batch 16 (224 px, 2 cores, one process,
# interleaved rounds) VGG16 bfloat16 6.6 -> 9.1 frames/s, EfficientNet-Lite0 bfloat16 148 -> 230;
# 2 beat 1, 4 and 8 for both. Accelerators run the whole batch at once.
AUTO_CPU_MICRO_BATCH = 2


def micro_batch_size(setting: int | str | None, local_batch: int, platform: str) -> int:
    """Images per backbone call for `setting` ("auto", a count, or 0/None: the whole batch).

    `local_batch` is the per-device batch; the result divides it ("auto" picks the largest
    divisor up to `AUTO_CPU_MICRO_BATCH` on CPU; an explicit count that does not divide raises).
    """
    if setting == "auto":
        return math.gcd(local_batch, AUTO_CPU_MICRO_BATCH) if platform == "cpu" else local_batch
    size = int(setting or 0)
    if size < 0 or (size and local_batch % size):
        raise ValueError(f"micro batch {size} does not divide the per-device batch {local_batch}")
    return size or local_batch


class BatchEncoder:
    """Jitted `images uint8 [N, H, W, 3] -> features [N, D]`, run in fixed-size sharded batches.

    `micro_batch` (`micro_batch_size`): each device runs the backbone on that many images at a
    time, in a `lax.map` loop inside the one jitted call; the features are the same up to rounding
    (XLA may pick another convolution algorithm for the smaller batch).
    """

    def __init__(
        self,
        model: nnx.Module,
        pool: Callable[[Sequence[jax.Array]], jax.Array],
        mesh: Mesh,
        batch_size: int,
        micro_batch: int | str | None = None,
    ):
        sharding.check_batch_size(batch_size, mesh)
        self.batch_size = batch_size
        local_batch = batch_size // sharding.data_parallel_size(mesh)
        platform = mesh.devices.flat[0].platform
        self.micro_batch = micro_batch_size(micro_batch, local_batch, platform)
        graphdef, state = nnx.split(model)
        self._state = sharding.replicate(state, mesh)

        def encode(state, images):
            activations = nnx.merge(graphdef, state)(images.astype(jnp.float32))
            return pool(activations).astype(jnp.float32)

        if self.micro_batch < local_batch:
            encode = _micro_batched(encode, self.micro_batch, mesh)
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

    def output_dim(self, item_shape: tuple[int, ...]) -> int:
        """Feature dimension for inputs of shape `item_shape` (traced, nothing is computed)."""
        spec = jax.ShapeDtypeStruct((self.batch_size, *item_shape), jnp.float32)
        return jax.eval_shape(self._encode, self._state, spec).shape[-1]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Encodes any number of images."""
        outputs = [
            self.encode_batch(images[i : i + self.batch_size])
            for i in range(0, len(images), self.batch_size)
        ]
        return np.concatenate([np.asarray(o) for o in outputs])


def _micro_batched(encode: Callable, micro_batch: int, mesh: Mesh) -> Callable:
    """`encode(state, images)` run per device on `micro_batch` images at a time (`lax.map`)."""

    def local(state, images):
        chunks = images.reshape(-1, micro_batch, *images.shape[1:])
        features = jax.lax.map(lambda chunk: encode(state, chunk), chunks)
        return features.reshape(len(images), *features.shape[2:])

    return jax.shard_map(
        local,
        mesh=mesh,
        in_specs=(sharding.replicated(mesh).spec, sharding.batch_sharded(mesh).spec),
        out_specs=sharding.batch_sharded(mesh).spec,
    )


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
    empty_reason: Callable[[dict[str, Any]], str | None] | None = None,
) -> ExtractionSummary:
    """Extracts features of `(id, path)` entries into `store`, resuming and logging failures.

    `load(path)` decodes a file into an object with `.frames` (raising an exception with a
    `reason` attribute for bad files); `describe(loaded)` gives the sidecar metadata.
    `empty_reason(sidecar)`, if given, names why a stored video is unusable (e.g. no audio): such
    a video stays stored (a rerun skips it) but counts as failed and is listed in the failures.
    """
    complete = [(v, p) for v, p in entries if store.is_complete(v)]
    done_before = {v for v, _ in complete}
    todo = [(v, p) for v, p in entries if v not in done_before]
    summary = ExtractionSummary(done=[], skipped=[], failed={})
    failure_rows: list[str] = []

    def record(video_id: str, path: str, meta: dict[str, Any], done: list[str]) -> None:
        reason = empty_reason(meta) if empty_reason else None
        if reason is None:
            done.append(video_id)
            return
        summary.failed[video_id] = reason
        failure_rows.append(f"{video_id}\t{path}\t{reason}\tstored with no features\n")

    for video_id, path in complete:
        record(video_id, path, store.load_meta(video_id), summary.skipped)
    progress = Progress(len(todo), "extract", "videos")
    queue: list[_Video] = []
    buffer: list[np.ndarray] = []
    buffered = 0

    def finish(video: _Video) -> None:
        started = time.perf_counter()
        if video.features:
            features = np.concatenate(video.features)
        else:
            frames = np.asarray(video.data.frames)
            features = np.zeros((0, encoder.output_dim(frames.shape[1:])), np.float32)
        meta = {"id": video.video_id, "source": video.path, **describe(video.data)}
        store.write(video.video_id, features, meta)
        record(video.video_id, video.path, meta, summary.done)
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


def extract_list(
    config,
    video_list: str,
    output_dir: str,
    *,
    layout: str,
    make_encoder: Callable[[Mesh], BatchEncoder],
    load: Callable[[str], Any],
    describe: Callable[[Any], dict[str, Any]],
    empty_reason: Callable[[dict[str, Any]], str | None] | None = None,
) -> ExtractionSummary:
    """This process's share of `video_list` through `extract_to_store`, then the list file."""
    sharding.maybe_initialize_distributed(config.distributed)
    entries = sharding.process_share(read_id_path_list(video_list))
    encoder = make_encoder(sharding.make_mesh(config.num_devices))
    store = FeatureStore(output_dir, layout)
    summary = extract_to_store(
        entries,
        load,
        encoder,
        store,
        describe,
        num_workers=config.num_workers,
        failures_name=f"failures{_process_suffix()}.tsv",
        empty_reason=empty_reason,
    )
    finished = set(summary.done) | set(summary.skipped)
    listed = [v for v, _ in entries if v in finished]
    store.write_list(listed, f"feature_files{_process_suffix()}.txt")
    return summary


def extract_visual(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts the visual features of every video of `video_list` (this process's share)."""
    model = create_backbone(config.backbone, weights=config.weights, dtype=DTYPES[config.dtype])
    decode = functools.partial(
        video_io.decode_video, fps=config.fps, size=config.size, mode=config.resize
    )
    return extract_list(
        config,
        video_list,
        output_dir,
        layout=config.layout,
        make_encoder=lambda mesh: BatchEncoder(
            model, mac, mesh, config.batch_size, config.get("micro_batch")
        ),
        load=decode,
        describe=functools.partial(describe_video, config),
    )


def extract(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Visual or audio extraction, as `config.mode` says ("visual" | "audio")."""
    from ndvr_jax.audio_extraction import extract_audio  # (it imports this module)

    modes = {"visual": extract_visual, "audio": extract_audio}
    mode = config.get("mode", "visual")
    if mode not in modes:
        raise ValueError(f"config.mode must be one of {sorted(modes)}, got {mode!r}")
    return modes[mode](config, video_list, output_dir)


def _process_suffix() -> str:
    return "" if jax.process_count() == 1 else f".{jax.process_index()}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())


# The audio path moved to `ndvr_jax.audio_extraction`, which builds on this module; its public
# names stay importable from here (resolved on first use, so neither import order is circular).
_AUDIO_NAMES = frozenset(
    {
        "UNUSABLE_AUDIO",
        "AUDIO_BACKBONES",
        "AudioBackbone",
        "AudioSegments",
        "audio_backbone",
        "audio_config",
        "create_audio_cnn",
        "create_musicnn",
        "describe_audio",
        "extract_audio",
        "load_audio_segments",
    }
)


def __getattr__(name: str) -> Any:
    if name in _AUDIO_NAMES:
        from ndvr_jax import audio_extraction  # (it imports this module)

        return getattr(audio_extraction, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
