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
import scipy.signal

from ndvr_jax.io.audio import decode_audio, encode_audio

# Short codec name → (PyAV encoder, container format).
CODECS: dict[str, tuple[str, str]] = {
    "mp3": ("libmp3lame", "mp3"),
    "aac": ("aac", "adts"),
    "opus": ("libopus", "ogg"),
}
# Sample rates an encoder takes; others are resampled to the first one and back.
CODEC_RATES: dict[str, tuple[int, ...]] = {"opus": (48000, 24000, 16000, 12000, 8000)}


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
    """Lossy round trip through `codec` ("mp3", "aac" or "opus") at `bit_rate` bit/s, in memory
    (PyAV); a rate the codec does not take (opus: 48/24/16/12/8 kHz) goes through its first one.

    The result keeps the input's length (the codec's delay stays, as in a real copy).
    """
    encoder, container_format = CODECS[codec]
    x = np.clip(np.asarray(samples, np.float32), -1.0, 1.0)
    rates = CODEC_RATES.get(codec, ())
    rate = sample_rate if not rates or sample_rate in rates else rates[0]
    if rate != sample_rate:
        x = librosa.resample(x, orig_sr=sample_rate, target_sr=rate)
    buffer = io.BytesIO()
    encode_audio(
        buffer,
        x,
        rate,
        codec=encoder,
        container_format=container_format,
        bit_rate=bit_rate,
    )
    buffer.seek(0)
    return _fit_length(decode_audio(buffer, sample_rate).samples, samples.size)


def telephone(samples: np.ndarray, sample_rate: int, low_rate: int = 8000) -> np.ndarray:
    """Downsampled to `low_rate` (mono) and back: nothing is left above `low_rate / 2`."""
    x = np.asarray(samples, np.float32)
    if low_rate >= sample_rate:
        return x
    low = librosa.resample(x, orig_sr=sample_rate, target_sr=low_rate, res_type="soxr_hq")
    back = librosa.resample(low, orig_sr=low_rate, target_sr=sample_rate, res_type="soxr_hq")
    return band_limit(_fit_length(back, x.size), sample_rate, 0.0, low_rate / 2)


def compress_dynamics(
    samples: np.ndarray,
    sample_rate: int,
    threshold_db: float = -20.0,
    ratio: float = 4.0,
    time_ms: float = 20.0,
) -> np.ndarray:
    """Feed-forward compressor: where the RMS level is above `threshold_db` dBFS it grows `ratio`
    times slower; the output is made up to the input's peak. The level detector is a one-pole
    smoother over `time_ms` run forward and backward (a look-ahead detector)."""
    x = np.asarray(samples, np.float64)
    if not x.size:
        return x.astype(np.float32)
    coeff = np.exp(-1.0 / max(time_ms * 1e-3 * sample_rate, 1.0))
    mean_square = scipy.signal.filtfilt([1 - coeff], [1.0, -coeff], x * x, padtype="even")
    level_db = 10 * np.log10(np.maximum(mean_square, 1e-18))
    over = np.maximum(level_db - threshold_db, 0.0)
    y = x * 10 ** (-over * (1 - 1 / ratio) / 20)
    peak_in, peak_out = np.abs(x).max(), np.abs(y).max()
    return (y * (peak_in / peak_out if peak_out > 0 else 1.0)).astype(np.float32)


def biquad(kind: str, freq_hz: float, gain_db: float, q: float, sample_rate: int) -> np.ndarray:
    """RBJ cookbook biquad `[b0, b1, b2, a1, a2]` (a0 = 1): "peak", "lowshelf" or "highshelf"."""
    a = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * freq_hz / sample_rate
    cos, alpha = np.cos(w0), np.sin(w0) / (2 * q)
    if kind == "peak":
        b = [1 + alpha * a, -2 * cos, 1 - alpha * a]
        den = [1 + alpha / a, -2 * cos, 1 - alpha / a]
    elif kind in ("lowshelf", "highshelf"):
        sign = 1 if kind == "lowshelf" else -1
        root = 2 * np.sqrt(a) * alpha
        b = [
            a * ((a + 1) - sign * (a - 1) * cos + root),
            sign * 2 * a * ((a - 1) - sign * (a + 1) * cos),
            a * ((a + 1) - sign * (a - 1) * cos - root),
        ]
        den = [
            (a + 1) + sign * (a - 1) * cos + root,
            -sign * 2 * ((a - 1) + sign * (a + 1) * cos),
            (a + 1) + sign * (a - 1) * cos - root,
        ]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    return np.array([*b, *den[1:]]) / den[0]


def equalize(
    samples: np.ndarray,
    sample_rate: int,
    bands: Sequence[tuple[str, float, float, float]],
) -> np.ndarray:
    """Runs the biquads `(kind, freq_hz, gain_db, q)` in series (`biquad`)."""
    y = np.asarray(samples, np.float64)
    for kind, freq, gain, q in bands:
        b0, b1, b2, a1, a2 = biquad(kind, freq, gain, q, sample_rate)
        y = scipy.signal.lfilter([b0, b1, b2], [1.0, a1, a2], y)
    return y.astype(np.float32)


def echo(
    samples: np.ndarray,
    sample_rate: int,
    delay_s: float,
    decay: float,
    reverb_s: float = 0.0,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Adds one echo `delay_s` later at `decay` gain and, if `reverb_s`, an exponentially decaying
    noise tail of that length (RT60) as a room's reverberation; same length as the input."""
    x = np.asarray(samples, np.float64)
    d = int(round(delay_s * sample_rate))
    y = x.copy()
    if 0 < d < x.size:
        y[d:] += decay * x[:-d]
    if reverb_s > 0:
        rng = rng or np.random.default_rng(0)
        t = np.arange(int(reverb_s * sample_rate)) / sample_rate
        tail = rng.standard_normal(t.size) * 10 ** (-3 * t / reverb_s)
        tail *= decay / max(np.sqrt(np.sum(tail**2)), 1e-12)
        y += scipy.signal.fftconvolve(x, tail)[: x.size]
    return (y / max(1.0, float(np.abs(y).max()))).astype(np.float32)


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

    Speed and tempo changes exclude each other (speed is tried first); so do band limit and the
    8 kHz round trip (`telephone`, tried first).
    """

    speed_prob: float = 0.25
    speed_range: tuple[float, float] = (0.85, 1.15)
    tempo_prob: float = 0.25
    tempo_range: tuple[float, float] = (0.85, 1.15)
    pitch_prob: float = 0.2
    pitch_semitones: tuple[float, float] = (-2.0, 2.0)
    mix_prob: float = 0.25
    mix_snr_db: tuple[float, float] = (5.0, 20.0)
    eq_prob: float = 0.3
    eq_gain_db: tuple[float, float] = (-12.0, 12.0)
    telephone_prob: float = 0.2
    band_prob: float = 0.25
    band_low_hz: tuple[float, float] = (50.0, 500.0)
    band_high_hz: tuple[float, float] = (3000.0, 8000.0)
    compress_prob: float = 0.3
    compress_threshold_db: tuple[float, float] = (-35.0, -15.0)
    compress_ratio: tuple[float, float] = (2.0, 10.0)
    echo_prob: float = 0.25
    echo_delay_s: tuple[float, float] = (0.05, 0.4)
    echo_decay: tuple[float, float] = (0.2, 0.6)
    reverb_s: tuple[float, float] = (0.0, 1.0)
    noise_prob: float = 0.3
    noise_snr_db: tuple[float, float] = (5.0, 30.0)
    reencode_prob: float = 0.5
    codecs: tuple[str, ...] = ("mp3", "aac", "opus")
    bit_rates: tuple[int, ...] = (24000, 32000, 48000)
    volume_prob: float = 0.5
    volume_db: tuple[float, float] = (-12.0, 6.0)


def _random_eq(
    rng: np.random.Generator, config: AudioAugmentConfig, sample_rate: int
) -> list[tuple[str, float, float, float]]:
    """One to three biquads: a low shelf, a peak and a high shelf, each kept with p = 0.6."""
    gain = lambda: float(rng.uniform(*config.eq_gain_db))
    nyquist = sample_rate / 2
    candidates = [
        ("lowshelf", float(rng.uniform(80, 400)), gain(), 0.707),
        (
            "peak",
            float(rng.uniform(300, min(4000, 0.8 * nyquist))),
            gain(),
            float(rng.uniform(0.5, 4)),
        ),
        ("highshelf", float(rng.uniform(2000, min(6000, 0.8 * nyquist))), gain(), 0.707),
    ]
    kept = [band for band in candidates if rng.random() < 0.6]
    return kept or [candidates[1]]


def random_augment(
    samples: np.ndarray,
    sample_rate: int,
    rng: np.random.Generator,
    config: AudioAugmentConfig = AudioAugmentConfig(),
    backgrounds: Sequence[np.ndarray] = (),
) -> tuple[np.ndarray, list[str]]:
    """Applies a random chain of augmentations; returns the waveform and what was applied.

    Order: speed or tempo, pitch, mixing (with one of `backgrounds`, if any), EQ, 8 kHz round trip
    or band limit, compression, echo/reverb, noise, re-encoding, volume.
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
    if rng.random() < config.eq_prob:
        bands = _random_eq(rng, config, sample_rate)
        x = equalize(x, sample_rate, bands)
        applied.append(
            "eq(" + ", ".join(f"{k} {f:.0f} Hz {g:+.1f} dB" for k, f, g, _ in bands) + ")"
        )
    if rng.random() < config.telephone_prob:
        x = telephone(x, sample_rate, 8000)
        applied.append("8 kHz mono")
    elif rng.random() < config.band_prob:
        low, high = draw(config.band_low_hz), draw(config.band_high_hz)
        x = band_limit(x, sample_rate, low, high)
        applied.append(f"band({low:.0f}-{high:.0f})")
    if rng.random() < config.compress_prob:
        threshold, ratio = draw(config.compress_threshold_db), draw(config.compress_ratio)
        x = compress_dynamics(x, sample_rate, threshold, ratio)
        applied.append(f"compress({threshold:.0f} dB, {ratio:.1f}:1)")
    if rng.random() < config.echo_prob:
        delay, decay, tail = (
            draw(config.echo_delay_s),
            draw(config.echo_decay),
            draw(config.reverb_s),
        )
        x = echo(x, sample_rate, delay, decay, tail, rng)
        applied.append(f"echo({delay:.2f} s, {decay:.2f}, reverb {tail:.2f} s)")
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
