"""Audio for AuSiL: decode any video/audio file with PyAV, Mel-spectrogram with librosa, windows.

The recipe of the original AuSiL extractor: mono audio at 44.1 kHz, DC removed and peak-normalised;
Mel power spectrogram (n_fft 1024, hop 512, 128 bands, centred frames with reflect padding as
librosa had then) in dB (`power_to_db`, ref 1, top_db 80); windows of 174 frames (≈2 s) every 87
frames (≈1 s), laid out `[time, mel]`.

Windows: window `i` starts at frame `87·i`; there are as many as needed to cover every frame, i.e.
`max(1, ceil((n_frames − 174) / 87) + 1)`. Frames past the end of the spectrogram are filled with
`pad_db` (default 0.0 dB, the original's zero padding of the dB spectrogram); this pads the last
window of most clips, and the only window of a clip shorter than one window (status `too_short`).

Statuses never raise: `no_audio_stream` and `silent` give zero windows (`[0, 174, 128]`),
`too_short` gives one padded window, `ok` the rest. Unreadable or corrupt files raise
`AudioDecodeError`.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
from collections.abc import Callable
from typing import IO

import av
import librosa
import numpy as np

from ndvr_jax.io import video as video_io


class AudioStatus(enum.StrEnum):
    """What was found in a file's audio."""

    OK = "ok"
    NO_AUDIO_STREAM = "no_audio_stream"
    SILENT = "silent"
    TOO_SHORT = "too_short"


class AudioDecodeError(video_io.VideoDecodeError):
    """A file could not be opened or its audio stream could not be decoded (`reason`: the same
    kinds as a video's: missing, not_a_file, empty, unreadable, truncated)."""


@dataclasses.dataclass(frozen=True)
class AudioConfig:
    """Decoding, spectrogram and windowing settings (defaults: the original AuSiL)."""

    sample_rate: int = 44100
    n_fft: int = 1024
    hop_length: int = 512
    n_mels: int = 128
    window_frames: int = 174
    hop_frames: int = 87
    pad_db: float = 0.0
    normalize: bool = True
    silence_threshold: float = 1e-4


# `spectrogram(samples, config) -> [n_frames, n_mels]` float32: a backbone's front-end.
Spectrogram = Callable[[np.ndarray, AudioConfig], np.ndarray]


@dataclasses.dataclass(frozen=True)
class DecodedAudio:
    """A mono waveform (float32, `[n_samples]`) and whether the file had an audio stream."""

    samples: np.ndarray
    sample_rate: int
    status: AudioStatus


@dataclasses.dataclass(frozen=True)
class AudioWindows:
    """Mel-spectrogram windows `[n_windows, window_frames, n_mels]` (float32) and their status."""

    windows: np.ndarray
    status: AudioStatus
    num_samples: int


def _no_windows(config: AudioConfig) -> np.ndarray:
    return np.zeros((0, config.window_frames, config.n_mels), np.float32)


def _name(source: str | os.PathLike | IO[bytes]) -> str:
    return repr(os.fspath(source)) if isinstance(source, str | os.PathLike) else "a stream"


def decode_audio(
    source: str | os.PathLike | IO[bytes], sample_rate: int = 44100, min_coverage: float = 0.9
) -> DecodedAudio:
    """Decodes the first audio stream of a file, resampled to `sample_rate`, mixed to mono.

    The mono mix is the mean of the channels. A file without an audio stream gives an empty
    waveform with status `no_audio_stream`; otherwise the status is `ok` (silence is judged later,
    by `waveform_windows`). A file path gets the checks of a video's (`ndvr_jax.io.video`): it
    must be a non-empty regular file, and decoding must reach `min_coverage` of the stream's
    announced duration. Raises `AudioDecodeError` (with its `reason`) otherwise, or if the file
    cannot be opened or decoded.
    """
    is_path = not hasattr(source, "read")
    if is_path:
        video_io.check_media_file(source, AudioDecodeError)
    try:
        with av.open(os.fspath(source) if is_path else source) as container:
            if not container.streams.audio:
                return DecodedAudio(
                    np.zeros(0, np.float32), sample_rate, AudioStatus.NO_AUDIO_STREAM
                )
            stream = container.streams.audio[0]
            chunks, end = _resampled(container, stream, sample_rate)
            duration = video_io.container_duration(container, stream)
    except (av.FFmpegError, ValueError) as e:
        raise AudioDecodeError("unreadable", f"cannot decode audio of {_name(source)}: {e}") from e
    if is_path:
        video_io.check_coverage(source, end, duration, min_coverage, AudioDecodeError)
    if not chunks:
        return DecodedAudio(np.zeros(0, np.float32), sample_rate, AudioStatus.OK)
    samples = np.concatenate(chunks, axis=1).mean(axis=0, dtype=np.float32)
    return DecodedAudio(samples, sample_rate, AudioStatus.OK)


def _resampled(container, stream, sample_rate: int) -> tuple[list[np.ndarray], float]:
    """The `[channels, n]` chunks of a stream resampled to `sample_rate`, and where its decoded
    frames end (seconds)."""
    resampler = av.AudioResampler(format="fltp", rate=sample_rate)
    chunks, end = [], 0.0
    for frame in container.decode(stream):
        if frame.time is not None:
            end = max(end, frame.time + frame.samples / frame.sample_rate)
        chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
    chunks.extend(f.to_ndarray() for f in resampler.resample(None))
    return chunks, end


def encode_audio(
    target: str | os.PathLike | IO[bytes],
    samples: np.ndarray,
    sample_rate: int,
    *,
    codec: str = "pcm_s16le",
    container_format: str | None = None,
    bit_rate: int | None = None,
) -> None:
    """Encodes a waveform (`[n]` mono or `[channels, n]`, floats in [-1, 1]) into one audio file.

    `container_format` is needed when `target` is a stream (for example "wav", "mp3", "adts").
    """
    planar = np.atleast_2d(np.asarray(samples, np.float32))
    layouts = {1: "mono", 2: "stereo"}
    if planar.shape[0] not in layouts:
        raise ValueError(f"expected 1 or 2 channels, got {planar.shape[0]}")
    opened = target if hasattr(target, "write") else os.fspath(target)
    with av.open(opened, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate, layout=layouts[planar.shape[0]])
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(planar), format="fltp", layout=layouts[planar.shape[0]]
        )
        frame.sample_rate = sample_rate
        frame.pts = 0
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def mel_power(
    samples: np.ndarray, config: AudioConfig = AudioConfig(), pad_mode: str = "reflect"
) -> np.ndarray:
    """Mel power spectrogram `[n_mels, n_frames]` of a mono waveform at the config's rate
    (librosa; frames centred, the signal's ends padded by `pad_mode`).

    Waveforms shorter than `n_fft` are zero-padded to `n_fft` samples first.
    """
    y = np.asarray(samples, np.float32)
    if y.size < config.n_fft:
        y = np.pad(y, (0, config.n_fft - y.size))
    return librosa.feature.melspectrogram(
        y=y,
        sr=config.sample_rate,
        n_fft=config.n_fft,
        hop_length=config.hop_length,
        n_mels=config.n_mels,
        pad_mode=pad_mode,
    )


def mel_spectrogram(samples: np.ndarray, config: AudioConfig = AudioConfig()) -> np.ndarray:
    """dB Mel-spectrogram `[n_frames, n_mels]` (float32) of a mono waveform (`mel_power`)."""
    return librosa.power_to_db(mel_power(samples, config)).T.astype(np.float32)


def num_windows(n_frames: int, config: AudioConfig = AudioConfig()) -> int:
    """Number of windows that cover `n_frames` spectrogram frames (at least one if any frame)."""
    if n_frames <= 0:
        return 0
    extra = max(0, n_frames - config.window_frames)
    return math.ceil(extra / config.hop_frames) + 1


def spectrogram_windows(mel: np.ndarray, config: AudioConfig = AudioConfig()) -> np.ndarray:
    """Cuts `[n_frames, n_mels]` into `[n_windows, window_frames, n_mels]`, padded with `pad_db`."""
    n = num_windows(mel.shape[0], config)
    total = (n - 1) * config.hop_frames + config.window_frames if n else 0
    padded = np.full((total, mel.shape[1]), config.pad_db, np.float32)
    padded[: mel.shape[0]] = mel
    starts = np.arange(n) * config.hop_frames
    index = starts[:, None] + np.arange(config.window_frames)[None, :]
    return padded[index]


def centred(samples: np.ndarray) -> tuple[np.ndarray, float]:
    """The waveform without its DC offset (float32) and its peak magnitude (0 if empty)."""
    y = np.asarray(samples, np.float32)
    y = y - y.mean() if y.size else y
    return y, float(np.abs(y).max()) if y.size else 0.0


def waveform_windows(
    samples: np.ndarray,
    config: AudioConfig = AudioConfig(),
    spectrogram: Spectrogram = mel_spectrogram,
) -> AudioWindows:
    """Mel windows of a mono waveform, with status `silent`, `too_short` or `ok`.

    The DC offset is removed; a waveform whose peak is then below `silence_threshold` (or that has
    no samples) is `silent` and gives zero windows. Otherwise it is peak-normalised (if
    `normalize`), turned into `[n_frames, n_mels]` by `spectrogram(samples, config)` (default: the
    dB Mel-spectrogram) and cut into windows; fewer frames than one window is `too_short`.
    """
    y, peak = centred(samples)
    if peak < config.silence_threshold:
        return AudioWindows(_no_windows(config), AudioStatus.SILENT, y.size)
    if config.normalize:
        y = y / peak
    mel = spectrogram(y, config)
    status = AudioStatus.TOO_SHORT if mel.shape[0] < config.window_frames else AudioStatus.OK
    return AudioWindows(spectrogram_windows(mel, config), status, y.size)


def load_audio_windows(
    source: str | os.PathLike | IO[bytes],
    config: AudioConfig = AudioConfig(),
    spectrogram: Spectrogram = mel_spectrogram,
) -> AudioWindows:
    """Decodes a file's audio and cuts its spectrogram into windows (see `waveform_windows`)."""
    decoded = decode_audio(source, config.sample_rate)
    if decoded.status is AudioStatus.NO_AUDIO_STREAM:
        return AudioWindows(_no_windows(config), decoded.status, 0)
    return waveform_windows(decoded.samples, config, spectrogram)
