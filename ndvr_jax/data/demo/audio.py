"""Sound tracks: a distinctive seeded synthesised track per video, and the operations that make an
audio copy (a span of another track, resampled for a speed change, with gain, noise and channel
changes). All tracks are float32 `[channels, samples]` at `media.AUDIO_RATE`.
"""

from __future__ import annotations

import numpy as np
from scipy.signal import lfilter

from .media import AUDIO_RATE

_SCALES = (
    (0, 2, 4, 7, 9),  # major pentatonic
    (0, 3, 5, 7, 10),  # minor pentatonic
    (0, 2, 3, 5, 7, 9, 10),  # dorian
    (0, 2, 4, 6, 7, 9, 11),  # lydian
    (0, 1, 4, 5, 7, 8, 10),  # phrygian dominant
)


def n_samples(duration: float) -> int:
    return int(round(duration * AUDIO_RATE))


def _add(out: np.ndarray, start: float, sound: np.ndarray, pan: float) -> None:
    """Mixes a mono `sound` into stereo `out` at `start` seconds with constant-power panning."""
    i0 = int(round(start * AUDIO_RATE))
    n = min(len(sound), out.shape[1] - i0)
    if n <= 0:
        return
    angle = (pan + 1.0) * np.pi / 4
    out[0, i0 : i0 + n] += np.cos(angle) * sound[:n]
    out[1, i0 : i0 + n] += np.sin(angle) * sound[:n]


def _tone(freq: float, seconds: float, harmonics: np.ndarray, decay: float) -> np.ndarray:
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    h = np.arange(1, len(harmonics) + 1)[:, None]
    wave = (harmonics[:, None] * np.sin(2 * np.pi * freq * h * t)).sum(0)
    envelope = np.minimum(t / 0.01, 1.0) * np.exp(-t / decay)
    return wave * envelope


def _kick(seconds: float = 0.25) -> np.ndarray:
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    freq = 45 + 110 * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(freq) / AUDIO_RATE) * np.exp(-t / 0.08)


def _hat(rng: np.random.Generator, seconds: float) -> np.ndarray:
    noise = np.diff(rng.standard_normal(int(seconds * AUDIO_RATE) + 1))  # high-passed noise
    return 0.3 * noise * np.exp(-np.arange(len(noise)) / (seconds * AUDIO_RATE / 4))


def _chirp(f0: float, f1: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * AUDIO_RATE)) / AUDIO_RATE
    freq = f0 * (f1 / f0) ** (t / seconds)
    return np.sin(2 * np.pi * np.cumsum(freq) / AUDIO_RATE) * np.sin(np.pi * t / seconds) ** 2


def synth_track(seed: int, duration: float, channels: int) -> np.ndarray:
    """A seeded piece: harmonic melody with envelopes, bass, drum pattern, chirps, noise bed."""
    rng = np.random.default_rng(seed)
    out = np.zeros((2, n_samples(duration)), np.float64)
    beat = 60.0 / rng.uniform(80, 150)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    scale = np.asarray(_SCALES[rng.integers(len(_SCALES))])
    harmonics = rng.uniform(0.1, 1.0, rng.integers(2, 8)) ** 2
    harmonics[0] = 1.0
    t, degree = 0.0, int(rng.integers(len(scale)))
    while t < duration:  # melody: a random walk on the scale
        length = beat * rng.choice([0.5, 1.0, 1.0, 1.5, 2.0])
        degree = int(np.clip(degree + rng.integers(-2, 3), 0, 2 * len(scale) - 1))
        octave, step = divmod(degree, len(scale))
        freq = 2 * root * 2 ** (octave + scale[step] / 12)
        _add(
            out, t, 0.25 * _tone(freq, length * 1.2, harmonics, length / 3), rng.uniform(-0.7, 0.7)
        )
        t += length
    for i in range(int(duration / (2 * beat)) + 1):  # bass on every other beat
        freq = root / 2 * (1.5 if rng.random() < 0.3 else 1.0)
        _add(out, 2 * i * beat, 0.3 * _tone(freq, 2 * beat, np.array([1.0, 0.4]), beat), 0.0)
    kicks, hats = rng.random(16) < 0.35, rng.random(16) < 0.5
    kicks[0] = True
    for i in range(int(duration / (beat / 4)) + 1):  # a 16-step drum pattern
        if kicks[i % 16]:
            _add(out, i * beat / 4, 0.5 * _kick(), 0.0)
        if hats[i % 16]:
            _add(out, i * beat / 4, _hat(rng, rng.uniform(0.03, 0.12)), rng.uniform(-0.5, 0.5))
    for _ in range(rng.integers(1, 4)):  # sweeps
        seconds = rng.uniform(0.3, 0.9)
        f0, f1 = rng.uniform(200, 4000, 2)
        _add(out, rng.uniform(0, duration), 0.2 * _chirp(f0, f1, seconds), rng.uniform(-1, 1))
    bed = lfilter([1.0], [1.0, -0.98], rng.standard_normal(out.shape), axis=1)
    out += 0.02 * bed / (np.abs(bed).max() + 1e-9)
    out *= 0.7 / (np.abs(out).max() + 1e-9)
    return to_channels(out.astype(np.float32), channels)


def to_channels(track: np.ndarray, channels: int) -> np.ndarray:
    """Downmixes to mono or duplicates mono to stereo."""
    if track.shape[0] == channels:
        return track
    if channels == 1:
        return track.mean(axis=0, keepdims=True)
    return np.repeat(track[:1], channels, axis=0)


def mix_in(track: np.ndarray, other: np.ndarray, start: float, gain: float) -> np.ndarray:
    """`track` with `other` added from `start` seconds on (truncated to fit)."""
    other = to_channels(other, track.shape[0])
    i0 = n_samples(start)
    n = max(0, min(other.shape[1], track.shape[1] - i0))
    out = track.copy()
    out[:, i0 : i0 + n] += gain * other[:, :n]
    return out


def copy_span(
    source: np.ndarray,
    start: float,
    speed: float,
    duration: float,
    channels: int,
    gain_db: float = 0.0,
    noise_snr_db: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """`duration` seconds of `source` from `start`, played `speed` times faster (resampling, so
    the pitch moves too), with a gain and optional white noise at `noise_snr_db`."""
    pos = start * AUDIO_RATE + np.arange(n_samples(duration)) * speed
    grid = np.arange(source.shape[1])
    out = np.stack([np.interp(pos, grid, ch, left=0.0, right=0.0) for ch in source])
    out = to_channels(out, channels) * 10 ** (gain_db / 20)
    if noise_snr_db is not None:
        rms = np.sqrt(np.mean(out**2)) + 1e-9
        noise = np.random.default_rng(seed).standard_normal(out.shape)
        out = out + noise * rms * 10 ** (-noise_snr_db / 20)
    return np.clip(out, -1.0, 1.0).astype(np.float32)
