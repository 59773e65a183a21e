"""Landmarks of a waveform: spectral peaks in the telephone band, hashed in pairs.

A landmark is an anchor peak and a later peak of its target zone (within `max_frames` frames and
`max_bins` bins); its hash packs the anchor's bin, the bin step and the frame gap (20 bits), and
it keeps the anchor's frame. Peaks are local maxima of the log spectrum after the local mean over
frequency is taken out (so a gain, an EQ curve or a band limit moves few of them), the strongest
`peaks_per_second` kept. Only 300-3,400 Hz is used: what a phone line, an 8 kHz copy and a radio
chain keep of every sound.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from scipy import ndimage

HASH_BITS = 20  # anchor bin (8) | bin step + max_bins (6) | frame gap (6)


@dataclasses.dataclass(frozen=True)
class LandmarkConfig:
    """Spectrum, peak and pairing settings (recorded in every fingerprint's sidecar)."""

    sample_rate: int = 8000
    n_fft: int = 512
    hop_length: int = 160  # 20 ms frames
    low_hz: float = 300.0
    high_hz: float = 3400.0
    whiten_bins: int = 31  # width of the local mean over frequency taken out of the log spectrum
    peak_frames: int = 4  # a peak is the maximum within ±peak_frames frames
    peak_bins: int = 10  # and ±peak_bins bins
    peaks_per_second: float = 30.0
    fan_out: int = 8  # pairs per anchor: the first peaks of its target zone
    look_ahead: int = 32  # peaks after the anchor searched for them
    max_frames: int = 40  # target zone: 1..max_frames frames later (< 64)
    max_bins: int = 31  # and within ±max_bins bins (< 32)

    def __post_init__(self):
        if not 1 <= self.max_frames < 64 or not 0 <= self.max_bins < 32:
            raise ValueError("max_frames must be in 1..63 and max_bins in 0..31 (hash fields)")
        if self.band()[1] - self.band()[0] > 256:
            raise ValueError("the band spans more than 256 bins (the anchor field)")

    def band(self) -> tuple[int, int]:
        """The spectrum bins used, `[low, high)`."""
        hz = self.sample_rate / self.n_fft
        return int(np.ceil(self.low_hz / hz)), int(self.high_hz / hz) + 1

    @property
    def frame_seconds(self) -> float:
        return self.hop_length / self.sample_rate


def log_spectrum(samples: np.ndarray, config: LandmarkConfig) -> np.ndarray:
    """`[frames, bins]` log magnitude (Hann window) of the band's bins, local mean removed."""
    samples = np.asarray(samples, np.float32)
    if len(samples) < config.n_fft:
        samples = np.pad(samples, (0, config.n_fft - len(samples)))
    frames = np.lib.stride_tricks.sliding_window_view(samples, config.n_fft)[:: config.hop_length]
    window = np.hanning(config.n_fft).astype(np.float32)
    low, high = config.band()
    magnitude = np.abs(np.fft.rfft(frames * window, axis=1))[:, low:high]
    spectrum = np.log(magnitude + 1e-6).astype(np.float32)
    return spectrum - ndimage.uniform_filter1d(spectrum, config.whiten_bins, axis=1, mode="nearest")


def spectral_peaks(spectrum: np.ndarray, config: LandmarkConfig) -> tuple[np.ndarray, np.ndarray]:
    """`(frames, bins)` of the strongest local maxima above the local mean, in time order."""
    size = (2 * config.peak_frames + 1, 2 * config.peak_bins + 1)
    neighbourhood = ndimage.maximum_filter(spectrum, size=size, mode="constant", cval=-np.inf)
    frames, bins = np.nonzero((spectrum == neighbourhood) & (spectrum > 0))
    keep = int(config.peaks_per_second * len(spectrum) * config.frame_seconds)
    if len(frames) > keep:
        strongest = np.argsort(-spectrum[frames, bins], kind="stable")[:keep]
        frames, bins = frames[strongest], bins[strongest]
    order = np.lexsort((bins, frames))
    return frames[order], bins[order]


def landmark_pairs(
    frames: np.ndarray, bins: np.ndarray, config: LandmarkConfig
) -> tuple[np.ndarray, np.ndarray]:
    """`(anchor, target)` peak indices: each anchor with the first `fan_out` peaks of its zone
    among the next `look_ahead` (peaks in time order)."""
    n = len(frames)
    step = np.arange(1, config.look_ahead + 1)
    anchor = np.arange(n)[:, None]
    target = anchor + step[None]
    valid = target < n
    target = np.minimum(target, n - 1)
    gap, rise = frames[target] - frames[anchor], bins[target] - bins[anchor]
    in_zone = valid & (gap >= 1) & (gap <= config.max_frames) & (np.abs(rise) <= config.max_bins)
    in_zone &= np.cumsum(in_zone, axis=1) <= config.fan_out
    rows, cols = np.nonzero(in_zone)
    return rows, target[rows, cols]


def fingerprint(samples: np.ndarray, config: LandmarkConfig = LandmarkConfig()) -> np.ndarray:
    """`[N, 2]` int64 landmarks of a mono waveform at `config.sample_rate`: (hash, anchor
    frame), in frame order."""
    frames, bins = spectral_peaks(log_spectrum(samples, config), config)
    anchor, target = landmark_pairs(frames, bins, config)
    rise = bins[target] - bins[anchor] + config.max_bins
    hashes = (bins[anchor] << 12) | (rise << 6) | (frames[target] - frames[anchor])
    order = np.argsort(frames[anchor], kind="stable")
    return np.stack([hashes[order], frames[anchor][order]], axis=1).astype(np.int64)
