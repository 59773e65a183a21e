"""Audio mode of batch extraction: AuSiL segment features of a list of videos.

Each video's audio is cut into its backbone's Mel-spectrogram windows (≈1 s apart); the windows
go through the batched encoder (`ndvr_jax.features.encoder`) as the "frames" of the video; each
segment feature is the MAC over the backbone's layers. Two backbones, each with its own front-end
(`AUDIO_BACKBONES`): `kumar2018` (AuSiL's CNN) and `musicnn_vgg`, and the
network-free `logmel` baseline (`ndvr_jax.backbones.logmel`).

A video without audio or with silence only is *stored* with zero segments (`[0, D]`) and its
`status` in the sidecar, so a rerun skips it; it is listed in `failures.tsv` (reason
`no_audio_stream` / `silent`) on every run and left out of `feature_files.txt`. Audio shorter than
one window is stored as one padded segment (status `too_short`, not a failure).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable, Iterator
from typing import Any

import jax
import numpy as np
from absl import logging
from flax import nnx

from ndvr_jax.backbones import check_weights_file, logmel, mac, musicnn, weights_setting
from ndvr_jax.backbones.audio_cnn import AudioCNN, load_audio_cnn
from ndvr_jax.features.batching import ExtractionSummary, extract_list, weights_record
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.io import audio as audio_io

UNUSABLE_AUDIO = (audio_io.AudioStatus.NO_AUDIO_STREAM, audio_io.AudioStatus.SILENT)


@dataclasses.dataclass(frozen=True)
class AudioSegments:
    """What the audio loader hands to `extract_to_store`: Mel windows as `frames`."""

    frames: np.ndarray  # [S, window_frames, n_mels]
    status: audio_io.AudioStatus
    num_samples: int

    def chunks(self) -> Iterator[np.ndarray]:
        """The windows as one chunk (even none: their shape sizes the empty feature array)."""
        yield self.frames


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
    check_weights_file(weights)
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
    # No network: 16 kHz, dB Mel 512/256/64, 2 s windows every ≈1 s; 4 time blocks × 64 bands.
    "logmel": AudioBackbone(
        logmel.AUDIO,
        logmel.load_windows,
        logmel.waveform_windows,
        logmel.create_logmel,
        logmel.FEATURE_DIM,
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
    """Mel windows of a file's audio; raises `AudioDecodeError` (a `VideoDecodeError`: missing,
    not_a_file, empty, unreadable, truncated) on bad files.

    No audio stream or silence is not an error: zero windows with that status.
    """
    windows = backbone.load_windows(path, backbone.settings)
    return AudioSegments(windows.windows, windows.status, windows.num_samples)


def describe_audio(config, segments: AudioSegments) -> dict[str, Any]:
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
    }


def audio_settings(config, weights_label: str) -> dict[str, Any]:
    """What a sidecar records of an audio run (backbone, weights, its whole front-end), so a
    rerun with other settings extracts again."""
    return {
        "mode": "audio",
        "backbone": config.audio.backbone,
        **weights_record(weights_label, weights_setting(config.audio.weights)),
        **dataclasses.asdict(audio_config(config)),
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
    model, weights_label = backbone.create(weights_setting(config.audio.weights))
    return extract_list(
        config,
        video_list,
        output_dir,
        layout=config.audio.layout,
        make_encoder=lambda mesh: BatchEncoder(
            model, mac, mesh, config.audio.batch_size, config.get("micro_batch")
        ),
        load=functools.partial(load_audio_segments, backbone=backbone),
        describe=functools.partial(describe_audio, config),
        empty_reason=_audio_empty_reason,
        settings=audio_settings(config, weights_label),
    )
