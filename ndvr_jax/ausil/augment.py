"""Waveform augmentations that audio copies really undergo, for training AuSiL.

Every function takes and returns a mono float32 waveform; randomness comes only from the
`np.random.Generator` passed in, so a seed fixes the result. `random_augment` draws a chain of
them from an `AudioAugmentConfig`.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence

import librosa
import numpy as np

from ndvr_jax.io.audio import decode_audio, encode_audio

# Short codec name → (PyAV encoder, container format).
CODECS: dict[str, tuple[str, str]] = {"mp3": ("libmp3lame", "mp3"), "aac": ("aac", "adts")}


def _power(x: np.ndarray) -> float:
    return float(np.mean(np.square(x, dtype=np.float64))) if x.size else 0.0


def _fit_length(x: np.ndarray, n: int) -> np.ndarray:
    return np.pad(x[:n], (0, max(0, n - x.size))).astype(np.float32)


def change_speed(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Plays `factor` times faster: duration / factor, every frequency × factor (resampling)."""
    return librosa.resample(
        np.asarray(samples, np.float32), orig_sr=sample_rate * factor, target_sr=sample_rate
    ).astype(np.float32)


def change_tempo(samples: np.ndarray, rate: float) -> np.ndarray:
    """Time stretch by `rate` (duration / rate) keeping the pitch (phase vocoder)."""
    return librosa.effects.time_stretch(np.asarray(samples, np.float32), rate=rate).astype(
        np.float32
    )


def pitch_shift(samples: np.ndarray, sample_rate: int, semitones: float) -> np.ndarray:
    """Shifts the pitch by `semitones` keeping the duration."""
    return librosa.effects.pitch_shift(
        np.asarray(samples, np.float32), sr=sample_rate, n_steps=semitones
    ).astype(np.float32)


def reencode(
    samples: np.ndarray, sample_rate: int, codec: str = "mp3", bit_rate: int = 32000
) -> np.ndarray:
    """Lossy round trip through `codec` ("mp3" or "aac") at `bit_rate` bit/s, in memory (PyAV).

    The result keeps the input's length (the codec's delay stays, as in a real copy).
    """
    encoder, container_format = CODECS[codec]
    x = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
    buffer = io.BytesIO()
    encode_audio(
        buffer,
        x,
        sample_rate,
        codec=encoder,
        container_format=container_format,
        bit_rate=bit_rate,
    )
    buffer.seek(0)
    return _fit_length(decode_audio(buffer, sample_rate).samples, x.size)


def band_limit(samples: np.ndarray, sample_rate: int, low_hz: float, high_hz: float) -> np.ndarray:
    """Keeps only frequencies in [low_hz, high_hz] (FFT mask), like a phone line or a speaker."""
    x = np.asarray(samples, np.float32)
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1.0 / sample_rate)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    return np.fft.irfft(spectrum, n=x.size).astype(np.float32)


def add_noise(samples: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """Adds white Gaussian noise at exactly `snr_db` (signal power / noise power)."""
    x = np.asarray(samples, np.float32)
    noise = rng.standard_normal(x.size)
    scale = np.sqrt(_power(x) / 10 ** (snr_db / 10) / max(_power(noise), 1e-20))
    return (x + scale * noise).astype(np.float32)


def change_volume(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Multiplies by `10^(gain_db/20)` and clips to [-1, 1] as a real gain stage would."""
    return np.clip(np.asarray(samples, np.float32) * 10 ** (gain_db / 20), -1.0, 1.0)


def mix(
    samples: np.ndarray, other: np.ndarray, snr_db: float, rng: np.random.Generator
) -> np.ndarray:
    """Mixes in `other` audio (looped, from a random offset) at `snr_db` below the signal."""
    x = np.asarray(samples, np.float32)
    other = np.asarray(other, np.float32)
    if not other.size or _power(other) == 0.0:
        return x
    background = np.resize(np.roll(other, -int(rng.integers(other.size))), x.size)
    scale = np.sqrt(_power(x) / 10 ** (snr_db / 10) / _power(background))
    return (x + scale * background).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class AudioAugmentConfig:
    """Probability of each augmentation and the uniform range its parameter is drawn from.

    Speed and tempo changes exclude each other (speed is tried first).
    """

    speed_prob: float = 0.3
    speed_range: tuple[float, float] = (0.8, 1.25)
    tempo_prob: float = 0.3
    tempo_range: tuple[float, float] = (0.8, 1.25)
    pitch_prob: float = 0.3
    pitch_semitones: tuple[float, float] = (-3.0, 3.0)
    mix_prob: float = 0.3
    mix_snr_db: tuple[float, float] = (5.0, 20.0)
    band_prob: float = 0.3
    band_low_hz: tuple[float, float] = (50.0, 500.0)
    band_high_hz: tuple[float, float] = (3000.0, 8000.0)
    noise_prob: float = 0.3
    noise_snr_db: tuple[float, float] = (10.0, 40.0)
    reencode_prob: float = 0.3
    codecs: tuple[str, ...] = ("mp3", "aac")
    bit_rates: tuple[int, ...] = (32000, 64000, 96000)
    volume_prob: float = 0.5
    volume_db: tuple[float, float] = (-12.0, 6.0)


def random_augment(
    samples: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    config: AudioAugmentConfig = AudioAugmentConfig(),
    backgrounds: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, list[str]]:
    """Applies a random chain of augmentations; returns the waveform and what was applied.

    Order: speed or tempo, pitch, mixing (with one of `backgrounds`, if any), band limit, noise,
    re-encoding, volume.
    """
    x = np.asarray(samples, np.float32)
    applied: list[str] = []
    if x.size == 0:
        return x, applied
    draw = lambda bounds: float(rng.uniform(*bounds))
    if rng.random() < config.speed_prob:
        factor = draw(config.speed_range)
        x = change_speed(x, sample_rate, factor)
        applied.append(f"speed({factor:.3f})")
    elif rng.random() < config.tempo_prob:
        rate = draw(config.tempo_range)
        x = change_tempo(x, rate)
        applied.append(f"tempo({rate:.3f})")
    if rng.random() < config.pitch_prob:
        steps = draw(config.pitch_semitones)
        x = pitch_shift(x, sample_rate, steps)
        applied.append(f"pitch({steps:.2f})")
    if backgrounds and rng.random() < config.mix_prob:
        other, snr = backgrounds[int(rng.integers(len(backgrounds)))], draw(config.mix_snr_db)
        x = mix(x, other, snr, rng)
        applied.append(f"mix({snr:.1f} dB)")
    if rng.random() < config.band_prob:
        low, high = draw(config.band_low_hz), draw(config.band_high_hz)
        x = band_limit(x, sample_rate, low, high)
        applied.append(f"band({low:.0f}-{high:.0f})")
    if rng.random() < config.noise_prob:
        snr = draw(config.noise_snr_db)
        x = add_noise(x, snr, rng)
        applied.append(f"noise({snr:.1f} dB)")
    if rng.random() < config.reencode_prob:
        codec = config.codecs[int(rng.integers(len(config.codecs)))]
        rate = config.bit_rates[int(rng.integers(len(config.bit_rates)))]
        x = reencode(x, sample_rate, codec, rate)
        applied.append(f"{codec}({rate // 1000}k)")
    if rng.random() < config.volume_prob:
        gain = draw(config.volume_db)
        x = change_volume(x, gain)
        applied.append(f"volume({gain:+.1f} dB)")
    return x, applied
