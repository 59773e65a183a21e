"""Batch feature extraction for lists of videos: decode in threads, encode in fixed batches.

Frames (visual mode, `ndvr_jax.features.visual`) or Mel-spectrogram windows (audio mode,
`ndvr_jax.features.audio`) of consecutive videos are packed into batches of one fixed size
(padded at the very end), so the jitted encoder compiles once and never waits on a short video.
Finished videos are written atomically; a rerun skips a video only if its sidecar records the
run's settings (mode, backbone, weights, fps, size, ...) and the source file's size and mtime,
and extracts it again otherwise (the summary counts why); a bad file is recorded in
`failures.tsv` and the rest go on.

`failures.tsv` has one `<id>\\t<path>\\t<reason>\\t<message>` line per video without features.
Reasons: `missing` / `unreadable` (the file cannot be opened or decoded; nothing is stored, a
rerun tries again) and, in audio mode, `no_audio_stream` / `silent` (stored with zero segments).
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.sharding import Mesh

from ndvr_jax import sharding
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.io.atomic import atomic_write
from ndvr_jax.io.prefetch import prefetch_chunks
from ndvr_jax.io.store import FeatureStore, file_fingerprint, read_id_path_list
from ndvr_jax.progress import Progress


@dataclasses.dataclass
class _Video:
    video_id: str
    path: str
    recorded: dict[str, Any]  # settings and source fingerprint for the sidecar
    data: Any = None  # what `load` gave (its `chunks()` read): described once decoded
    error: Exception | None = None  # why it failed, if it did
    item_shape: tuple[int, ...] | None = None  # of one frame (or Mel window)
    features: list[np.ndarray] = dataclasses.field(default_factory=list)
    remaining: int = 0  # frames buffered but not yet encoded
    decoded: bool = False


@dataclasses.dataclass
class ExtractionSummary:
    """What an extraction run did."""

    done: list[str]
    skipped: list[str]
    failed: dict[str, str]  # id -> reason
    stale: dict[str, str] = dataclasses.field(default_factory=dict)  # id -> why it was redone

    def __str__(self) -> str:
        redone = f" (re-extracted {len(self.stale)}: {_counts(self.stale)})" if self.stale else ""
        failed = f" ({_counts(self.failed)})" if self.failed else ""
        return (
            f"extracted {len(self.done)}{redone}, already done {len(self.skipped)}, "
            f"failed {len(self.failed)}{failed}"
        )


def _counts(reasons: Mapping[str, str]) -> str:
    """`reason: count, ...` of an `{id: reason}` dict, sorted by reason."""
    counts: dict[str, int] = {}
    for reason in reasons.values():
        counts[reason] = counts.get(reason, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))


def extract_to_store(
    entries: Sequence[tuple[str, str]],
    load: Callable[[str], Any],
    encoder: BatchEncoder,
    store: FeatureStore,
    describe: Callable[[Any], dict[str, Any]],
    num_workers: int = 2,
    failures_name: str = "failures.tsv",
    empty_reason: Callable[[dict[str, Any]], str | None] | None = None,
    settings: Mapping[str, Any] | None = None,
    read_timeout: float | None = None,
) -> ExtractionSummary:
    """Extracts features of `(id, path)` entries into `store`, resuming and logging failures.

    `load(path)` gives an object whose `chunks()` yields the file's frames a chunk at a time
    (raising an exception with a `reason` attribute for bad files, before or during the
    chunks); `describe(loaded)`, once its chunks are read, gives the sidecar metadata. Chunks go
    through the encoder as they come, so memory does not grow with a video's length.
    `settings` (JSON values) are recorded in every sidecar with the source file's fingerprint; a
    stored video whose sidecar differs in any of them is extracted again (`summary.stale`).
    `empty_reason(sidecar)`, if given, names why a stored video is unusable (e.g. no audio): such
    a video stays stored (a rerun skips it) but counts as failed and is listed in the failures.
    A file whose next chunk takes longer than `read_timeout` seconds to decode fails with reason
    `timeout` (its read is abandoned) and the rest go on.
    """
    summary = ExtractionSummary(done=[], skipped=[], failed={})
    complete, todo = _split_done(entries, store, dict(settings or {}), summary.stale)
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

    def fail(video: _Video) -> None:
        reason = getattr(video.error, "reason", type(video.error).__name__)
        summary.failed[video.video_id] = reason
        failure_rows.append(f"{video.video_id}\t{video.path}\t{reason}\t{_one_line(video.error)}\n")
        logging.warning("skipping %s: %s", video.video_id, video.error)
        progress.update(1)

    def finish(video: _Video) -> None:
        if video.error is not None:
            fail(video)
            return
        started = time.perf_counter()
        if video.features:
            features = np.concatenate(video.features)
        else:
            features = np.zeros((0, *encoder.output_shape(video.item_shape)), np.float32)
        described = {"id": video.video_id, "source": video.path, **describe(video.data)}
        meta = {**described, **video.recorded}
        store.write(video.video_id, features, meta)
        record(video.video_id, video.path, meta, summary.done)
        progress.update(1, frames=len(features))
        logging.debug("wrote %s in %.3fs", video.video_id, time.perf_counter() - started)

    def finish_ready() -> None:
        while queue and queue[0].decoded and queue[0].remaining == 0:
            finish(queue.pop(0))

    def run_batch(take: int) -> None:
        nonlocal buffer, buffered
        stacked = np.concatenate(buffer)
        images, rest = stacked[:take], stacked[take:]
        buffer, buffered = ([rest] if len(rest) else []), len(rest)
        features = np.asarray(encoder.encode_batch(images))
        offset = 0
        for video in queue:  # the buffered frames are theirs, in this order
            n = min(video.remaining, len(features) - offset)
            video.features.append(features[offset : offset + n])
            video.remaining -= n
            offset += n
        finish_ready()

    def add(video: _Video, chunk: np.ndarray) -> None:
        nonlocal buffered
        video.item_shape = chunk.shape[1:]
        video.remaining += len(chunk)
        buffer.append(chunk)
        buffered += len(chunk)
        while buffered >= encoder.batch_size:
            run_batch(encoder.batch_size)

    streams = prefetch_chunks(
        lambda e: _loaded_chunks(load, e[1]), todo, num_workers, stall_timeout=read_timeout
    )
    for (video_id, path, recorded), chunks in streams:
        video = _Video(video_id, path, recorded)
        queue.append(video)
        for loaded, chunk in _until_error(chunks, video):
            video.data = loaded
            add(video, chunk)
        video.decoded = True
        finish_ready()
    if buffered:
        run_batch(buffered)
    finish_ready()

    with atomic_write(store.root / failures_name) as f:
        f.write("".join(failure_rows))
    return summary


def _until_error(chunks: Iterator, video: _Video) -> Iterator:
    """`chunks` until one fails to decode (a bad file: kept in `video.error`, the rest go on);
    errors of the caller's own work on each chunk are not caught."""
    try:
        yield from chunks
    except Exception as e:  # noqa: BLE001 - any decoding error marks the file, never the run
        video.error = e


def _loaded_chunks(load: Callable[[str], Any], path: str) -> Iterator[tuple[Any, np.ndarray]]:
    """`(loaded, chunk)` for each chunk of `load(path)` (run in a decoding thread)."""
    loaded = load(path)
    for chunk in loaded.chunks():
        yield loaded, np.asarray(chunk)


def _split_done(
    entries: Sequence[tuple[str, str]],
    store: FeatureStore,
    settings: dict[str, Any],
    stale: dict[str, str],
) -> tuple[list[tuple[str, str]], list[tuple[str, str, dict[str, Any]]]]:
    """Entries already stored with these settings and source file, and the rest to extract (with
    what their sidecars will record); `stale` gets why each stored-but-outdated one is redone.

    A source file that is gone is not compared (its stored features stay if the settings match).
    """
    complete, todo = [], []
    for video_id, path in entries:
        fingerprint = file_fingerprint(path)
        recorded = {**settings, "source_file": fingerprint} if fingerprint else settings
        stored = store.is_complete(video_id)
        changed = store.changed_settings(video_id, recorded) if stored else []
        if stored and not changed:
            complete.append((video_id, path))
            continue
        if changed:
            stale[video_id] = ", ".join(changed) + " changed"
        todo.append((video_id, path, recorded))
    return complete, todo


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
    settings: Mapping[str, Any] | None = None,
) -> ExtractionSummary:
    """This process's share of `video_list` through `extract_to_store`, then the list file.

    A share with no videos changes nothing in the store (a warning says so): an empty list
    never replaces the `feature_files.txt` of an earlier run.
    """
    sharding.maybe_initialize_distributed(config.distributed)
    entries = sharding.process_share(read_id_path_list(video_list, FeatureStore.check_id))
    if not entries:
        logging.warning("%s lists no videos (for this process): %s left as it was", video_list,
                        output_dir)  # fmt: skip
        return ExtractionSummary(done=[], skipped=[], failed={})
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
        settings=settings,
        read_timeout=config.read_timeout_s or None,
    )
    finished = set(summary.done) | set(summary.skipped)
    listed = [v for v, _ in entries if v in finished]
    store.write_list(listed, f"feature_files{_process_suffix()}.txt")
    return summary


def weights_record(label: str, weights: str | os.PathLike | None) -> dict[str, Any]:
    """The weights part of a run's settings: their label, and the file's fingerprint if a file."""
    return {"weights": label, "weights_file": file_fingerprint(weights) if weights else None}


def _process_suffix() -> str:
    return "" if jax.process_count() == 1 else f".{jax.process_index()}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
