"""Batch feature extraction for lists of videos: decode in threads, encode in fixed batches.

Frames (visual mode, `ndvr_jax.features.visual`) or Mel-spectrogram windows (audio mode,
`ndvr_jax.features.audio`) of consecutive videos are packed into batches of one fixed size
(padded at the very end), so the jitted encoder compiles once and never waits on a short video.
Finished videos are written atomically; a rerun skips them; a bad file is recorded in
`failures.tsv` and the rest go on.

`failures.tsv` has one `<id>\\t<path>\\t<reason>\\t<message>` line per video without features.
Reasons: `missing` / `unreadable` (the file cannot be opened or decoded; nothing is stored, a
rerun tries again) and, in audio mode, `no_audio_stream` / `silent` (stored with zero segments).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

from ndvr_jax import sharding
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.io.atomic import atomic_write
from ndvr_jax.io.prefetch import prefetch_map
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.progress import Progress


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


def _process_suffix() -> str:
    return "" if jax.process_count() == 1 else f".{jax.process_index()}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
