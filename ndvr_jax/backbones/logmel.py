"""A network-free audio "backbone": plain log-Mel vectors of 2 s windows (the baseline AuSiL's
learned parts must beat).

Front-end: mono audio at 16 kHz, dB Mel-spectrogram (`ndvr_jax.io.audio.mel_spectrogram`: n_fft
512, hop 256, 64 bands), windows of 128 frames (2.05 s) every 64 frames (≈1 s), DC-removed and
peak-normalised first as every backbone's. Each window is cut into `BLOCKS` equal time blocks;
a block's vector is its bands' mean over time minus that vector's own mean (so a gain change,
which shifts every dB value alike, leaves it unchanged); the window's feature is the blocks'
vectors concatenated (`BLOCKS` × 64 = 256-d), L2-normalised by the extraction's MAC.
"""

from __future__ import annotations

import os

import jax
from flax import nnx

from ndvr_jax.io import audio as audio_io

BLOCKS = 4
AUDIO = audio_io.AudioConfig(
    sample_rate=16000, n_fft=512, hop_length=256, n_mels=64, window_frames=128, hop_frames=64
)
FEATURE_DIM = BLOCKS * AUDIO.n_mels


class LogMelBlocks(nnx.Module):
    """`[N, frames, mels]` dB windows → one `[N, 1, 1, BLOCKS·mels]` map (no parameters)."""

    def __call__(self, windows: jax.Array) -> list[jax.Array]:
        n, frames, mels = windows.shape
        blocks = windows[:, : frames - frames % BLOCKS].reshape(n, BLOCKS, -1, mels).mean(axis=2)
        blocks = blocks - blocks.mean(axis=-1, keepdims=True)
        return [blocks.reshape(n, 1, 1, BLOCKS * mels)]


def create_logmel(weights: str | os.PathLike | None) -> tuple[nnx.Module, str]:
    """The parameter-free log-Mel pooling; `weights` is ignored (there are none)."""
    del weights
    return LogMelBlocks(), "none (log-Mel, no network)"


def waveform_windows(samples, config: audio_io.AudioConfig = AUDIO) -> audio_io.AudioWindows:
    """dB Mel windows of a waveform (statuses as `ndvr_jax.io.audio.waveform_windows`)."""
    return audio_io.waveform_windows(samples, config)


def load_windows(source, config: audio_io.AudioConfig = AUDIO) -> audio_io.AudioWindows:
    """Decodes a file's audio (16 kHz mono) and cuts its dB Mel-spectrogram into windows."""
    return audio_io.load_audio_windows(source, config)
