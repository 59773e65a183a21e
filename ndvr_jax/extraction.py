"""Batch feature extraction for lists of videos: decode in threads, encode in fixed batches.

Frames (visual mode) or Mel-spectrogram windows (audio mode) of consecutive videos are packed into
batches of one fixed size (padded at the very end), so the jitted encoder compiles once and never
waits on a short video. The batch axis is sharded over every device of the mesh. Finished videos
are written atomically; a rerun skips them; a bad file is recorded in `failures.tsv` and the rest
go on.

`failures.tsv` has one `<id>\\t<path>\\t<reason>\\t<message>` line per video without features.
Reasons: `missing` / `unreadable` (the file cannot be opened or decoded; nothing is stored, a
rerun tries again) and, in audio mode, `no_audio_stream` / `silent`. A video without audio or
with silence only is *stored* with zero segments (`[0, D]`) and its `status` in the sidecar,
so a rerun skips it, and it is listed in `failures.tsv` on every run and left out of
`feature_files.txt`. Audio shorter than one window is stored as one padded segment (status
`too_short`, not a failure).
"""

from __future__ import annotations

import dataclasses
import functools
import os
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
from ndvr_jax.backbones import create_backbone, mac, musicnn
from ndvr_jax.backbones.audio_cnn import AudioCNN, load_audio_cnn
from ndvr_jax.io import audio as audio_io
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


def _extract(
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
    return _extract(
        config,
        video_list,
        output_dir,
        layout=config.layout,
        make_encoder=lambda mesh: BatchEncoder(model, mac, mesh, config.batch_size),
        load=decode,
        describe=functools.partial(describe_video, config),
    )


# ---------------------------------------------------------------------------------------------
# Audio mode (AuSiL segment features)

UNUSABLE_AUDIO = (audio_io.AudioStatus.NO_AUDIO_STREAM, audio_io.AudioStatus.SILENT)


@dataclasses.dataclass(frozen=True)
class AudioSegments:
    """What the audio loader hands to `extract_to_store`: Mel windows as `frames`."""

    frames: np.ndarray  # [S, window_frames, n_mels]
    status: audio_io.AudioStatus
    num_samples: int


def _initialised(factory: Callable[[], nnx.Module]) -> nnx.Module:
    """`factory()` in eval mode, its random initialisation compiled once (not run op by op)."""
    graphdef = nnx.graphdef(nnx.eval_shape(factory))
    model = nnx.merge(graphdef, jax.jit(lambda: nnx.state(factory()))())
    model.eval()
    return model


def create_audio_cnn(weights: str | os.PathLike | None) -> tuple[nnx.Module, str]:
    """The Kumar et al. audio CNN (eval mode) and a label of its weights.

    `weights`: a path to the original PyTorch state dict (`load_audio_cnn`), or "default"/None:
    no package registry ships weights for this network, so both give a random initialisation
    (seed 0), labelled "random (untrained)" -- the untrained baseline.
    """
    if weights is None or weights == "default":
        if weights == "default":
            logging.warning(
                "kumar2018 audio CNN: no pretrained weights are installed with the package; using "
                "a RANDOM initialisation (untrained baseline). Pass --config.audio.weights=<.pkl>."
            )
        return _initialised(lambda: AudioCNN(rngs=nnx.Rngs(0))), "random (untrained)"
    return load_audio_cnn(weights), str(weights)


def create_musicnn(weights: str | os.PathLike | None) -> tuple[nnx.Module, str]:
    """musicnn's VGG (eval mode) and a label of its weights.

    `weights`: "default" (`MTT_vgg` of the installed `musicnn` package), a model name of that
    package (`MTT_vgg`, `MSD_vgg`), a checkpoint path, or None (random initialisation).
    """
    if weights is None:
        return _initialised(lambda: musicnn.MusicnnVGG(rngs=nnx.Rngs(0))), "random (untrained)"
    name = musicnn.DEFAULT_MODEL if weights == "default" else weights
    label = f"musicnn {name}" if name in musicnn.MODELS else str(name)
    return musicnn.load_musicnn(name), label


@dataclasses.dataclass(frozen=True)
class AudioBackbone:
    """An audio CNN for AuSiL segments: its front-end (fixed by its weights) and its builder."""

    settings: audio_io.AudioConfig
    load_windows: Callable[[str, audio_io.AudioConfig], audio_io.AudioWindows]
    waveform_windows: Callable[[np.ndarray, audio_io.AudioConfig], audio_io.AudioWindows]
    create: Callable[[str | os.PathLike | None], tuple[nnx.Module, str]]
    feature_dim: int


AUDIO_BACKBONES = {
    # AuSiL's: 44.1 kHz, Mel 1024/512/128 in dB, 2 s windows every 1 s; MAC of 12 layers.
    "kumar2018": AudioBackbone(
        audio_io.AudioConfig(),
        audio_io.load_audio_windows,
        audio_io.waveform_windows,
        create_audio_cnn,
        AudioCNN.FEATURE_DIM,
    ),
    # musicnn's: 16 kHz, Mel 512/256/96, log10(10000x+1), 3 s windows every ≈1 s; MAC of 5 pools.
    "musicnn_vgg": AudioBackbone(
        musicnn.AUDIO,
        musicnn.load_windows,
        musicnn.waveform_windows,
        create_musicnn,
        musicnn.FEATURE_DIM,
    ),
}


def audio_backbone(name: str) -> AudioBackbone:
    """An entry of `AUDIO_BACKBONES`."""
    if name not in AUDIO_BACKBONES:
        raise ValueError(f"unknown audio backbone {name!r}; available: {sorted(AUDIO_BACKBONES)}")
    return AUDIO_BACKBONES[name]


def audio_config(config) -> audio_io.AudioConfig:
    """The decoding/Mel/windowing settings of an extraction config's audio backbone."""
    return audio_backbone(config.audio.backbone).settings


def load_audio_segments(path: str, backbone: AudioBackbone) -> AudioSegments:
    """Mel windows of a file's audio; raises `VideoDecodeError` (missing/unreadable) on bad files.

    No audio stream or silence is not an error: zero windows with that status.
    """
    if not os.path.exists(path):
        raise video_io.VideoDecodeError("missing", f"{path} does not exist")
    try:
        windows = backbone.load_windows(path, backbone.settings)
    except audio_io.AudioDecodeError as e:
        raise video_io.VideoDecodeError("unreadable", str(e)) from e
    return AudioSegments(windows.windows, windows.status, windows.num_samples)


def describe_audio(config, weights_label: str, segments: AudioSegments) -> dict[str, Any]:
    """Sidecar metadata of one video's audio segments (`timestamps`: window starts, seconds)."""
    settings = audio_config(config)
    frame_seconds = settings.hop_length / settings.sample_rate
    return {
        "status": str(segments.status),
        "num_samples": segments.num_samples,
        "duration": segments.num_samples / settings.sample_rate,
        "timestamps": [
            round(i * settings.hop_frames * frame_seconds, 6) for i in range(len(segments.frames))
        ],
        "segment_seconds": round(settings.window_frames * frame_seconds, 6),
        "backbone": config.audio.backbone,
        "weights": weights_label,
        **{k: getattr(settings, k) for k in ("sample_rate", "n_fft", "hop_length", "n_mels")},
        **{k: getattr(settings, k) for k in ("window_frames", "hop_frames")},
    }


def _audio_empty_reason(meta: dict[str, Any]) -> str | None:
    status = meta.get("status")
    return status if status in UNUSABLE_AUDIO else None


def extract_audio(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Extracts AuSiL segment features `[S, D]` of every video of `video_list`.

    Segments are the backbone's Mel windows (≈1 s apart) through its CNN with MAC over its
    layers (`kumar2018`: 2 s windows, D = 2,528; `musicnn_vgg`: 3 s windows, D = 640). The store
    layout is `config.audio.layout` ("ausil": `<id>/wlaf.npz`). Videos without audio or silent
    are stored empty and listed as failures (module docstring).
    """
    backbone = audio_backbone(config.audio.backbone)
    model, weights_label = backbone.create(config.audio.weights)
    return _extract(
        config,
        video_list,
        output_dir,
        layout=config.audio.layout,
        make_encoder=lambda mesh: BatchEncoder(model, mac, mesh, config.audio.batch_size),
        load=functools.partial(load_audio_segments, backbone=backbone),
        describe=functools.partial(describe_audio, config, weights_label),
        empty_reason=_audio_empty_reason,
    )


def extract(config, video_list: str, output_dir: str) -> ExtractionSummary:
    """Visual or audio extraction, as `config.mode` says ("visual" | "audio")."""
    modes = {"visual": extract_visual, "audio": extract_audio}
    mode = config.get("mode", "visual")
    if mode not in modes:
        raise ValueError(f"config.mode must be one of {sorted(modes)}, got {mode!r}")
    return modes[mode](config, video_list, output_dir)


def _process_suffix() -> str:
    return "" if jax.process_count() == 1 else f".{jax.process_index()}"


def _one_line(error: Exception) -> str:
    return " ".join(str(error).split())
