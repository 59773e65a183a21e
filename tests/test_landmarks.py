"""Audio landmarks: hashes stay within their fields, a gain or an offset changes nothing, the
matcher's counts equal a brute-force count of agreeing offsets, and a copy through a telephone
band or mixed with another sound still outscores unrelated audio."""

import numpy as np
import pytest
from scipy import signal

from ndvr_jax.landmarks.fingerprint import HASH_BITS, LandmarkConfig, fingerprint
from ndvr_jax.landmarks.matching import LandmarkIndex, aligned_counts, landmark_score

CONFIG = LandmarkConfig()
RATE = CONFIG.sample_rate


def melody(seed: int, seconds: float = 8.0) -> np.ndarray:
    """Random notes (harmonic tones, 0.1-0.4 s each) over faint noise."""
    rng = np.random.default_rng(seed)
    out = []
    while sum(map(len, out)) < seconds * RATE:
        n = int(rng.uniform(0.1, 0.4) * RATE)
        t = np.arange(n) / RATE
        f0 = rng.uniform(200, 1200)
        note = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 4))
        out.append(note * np.hanning(n))
    x = np.concatenate(out)[: int(seconds * RATE)]
    return (x + 0.01 * rng.standard_normal(len(x))).astype(np.float32)


def shared(a: np.ndarray, b: np.ndarray) -> float:
    """Share of `a`'s (hash, frame) landmarks also in `b`."""
    keys = lambda f: set(map(tuple, f.tolist()))
    return len(keys(a) & keys(b)) / len(a)


def test_fields_density_and_order():
    marks = fingerprint(melody(0))
    assert marks.shape[1] == 2 and len(marks) > 100
    assert marks[:, 0].min() >= 0 and marks[:, 0].max() < 2**HASH_BITS
    assert np.all(np.diff(marks[:, 1]) >= 0)  # anchor frames in order
    gaps = marks[:, 0] & 63
    assert gaps.min() >= 1 and gaps.max() <= CONFIG.max_frames
    anchors_per_frame = np.bincount(marks[:, 1])
    seconds = 8.0
    assert len(np.unique(marks[:, 1])) <= CONFIG.peaks_per_second * seconds
    assert anchors_per_frame.max() <= CONFIG.fan_out * (2 * CONFIG.peak_bins + 1)


def test_gain_keeps_the_landmarks_and_a_shift_moves_the_frames():
    x = melody(1)
    assert shared(fingerprint(x), fingerprint(0.05 * x)) > 0.95
    hop = CONFIG.hop_length
    late = fingerprint(x[50 * hop :])  # starts 50 frames later
    early = fingerprint(x)
    moved = late + np.array([0, 50])
    assert shared(moved, early) > 0.8


def brute_force_counts(query: np.ndarray, database: list[np.ndarray], tolerance: int) -> list:
    """Per video: max over offsets o of the hits whose offset is within `tolerance` of o."""
    out = []
    for video in database:
        offsets = [
            d_frame - q_frame
            for q_hash, q_frame in query.tolist()
            for d_hash, d_frame in video.tolist()
            if q_hash == d_hash
        ]
        best = max((sum(abs(o - c) <= tolerance for o in offsets) for c in set(offsets)), default=0)
        out.append(best)
    return out


@pytest.mark.parametrize("tolerance", [0, 1, 3])
def test_counts_equal_brute_force(tolerance):
    rng = np.random.default_rng(tolerance)
    marks = lambda n: np.stack([rng.integers(0, 12, n), rng.integers(0, 30, n)], axis=1)
    database = [marks(40), marks(0), marks(25), marks(60)]
    index = LandmarkIndex(database)
    for _ in range(5):
        query = marks(int(rng.integers(0, 30)))
        got = index.match(query, tolerance)
        assert got.counts.tolist() == brute_force_counts(query, database, tolerance)
    # a copy of video 3 shifted by 7 frames: its offset is found
    query = database[3][10:40] - np.array([0, 7])
    assert index.match(query, 0).offsets[3] == 7


def test_copies_through_a_phone_band_or_under_music_beat_unrelated_audio():
    sources = [melody(s) for s in range(4)]
    database = [fingerprint(x) for x in sources]
    sos = signal.butter(6, [300, 3400], "bandpass", fs=RATE, output="sos")
    band = signal.sosfilt(sos, sources[2])[RATE : 6 * RATE]
    mixed = sources[1] + melody(99)  # another melody at 0 dB
    counts = aligned_counts([fingerprint(band), fingerprint(mixed)], database)
    assert counts.shape == (2, 4)
    assert counts[0].argmax() == 2 and counts[0, 2] > 5 * np.delete(counts[0], 2).max()
    assert counts[1].argmax() == 1 and counts[1, 1] > 3 * np.delete(counts[1], 1).max()


def test_empty_audio_and_score():
    assert fingerprint(np.zeros(10, np.float32)).shape == (0, 2)
    counts = aligned_counts([np.zeros((0, 2), np.int64)], [fingerprint(melody(0))])
    assert counts.tolist() == [[0]]
    np.testing.assert_allclose(landmark_score(np.array([0, 10, 30]), 10), [0, 0.5, 0.75])
