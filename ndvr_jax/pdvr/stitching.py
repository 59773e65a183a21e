"""Training data for the transition DNN and the VFRM weights, made from any list of videos'
frame features by stitching spans of different videos (and jumps inside one video).

The copy transformation of a stitched query acts on features: one random offset shared by every
frame of the query plus independent noise per frame, each frame keeping its norm (a picture-level
transform moves all frames of a copy the same way; noise stands for re-encoding). `synthetic_videos`
makes smooth random feature sequences for runs without extracted features.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ndvr_jax.io.store import read_id_path_list


def load_features(path: str | os.PathLike) -> np.ndarray:
    """[n, D] float32 features of one video: `.npy`, or `.npz` with key `features`."""
    if str(path).endswith(".npz"):
        with np.load(path) as data:
            return np.asarray(data["features"], np.float32)
    return np.asarray(np.load(path), np.float32)


def load_feature_list(path: str | os.PathLike) -> tuple[list[str], list[np.ndarray]]:
    """Ids and features of the videos of an `<id>\t<path>` list."""
    entries = read_id_path_list(path)
    return [i for i, _ in entries], [load_features(item) for _, item in entries]


def synthetic_videos(
    num_videos: int, num_frames: int, dim: int, seed: int = 0, drift: float = 0.15
) -> list[np.ndarray]:
    """Smooth unit-norm feature sequences [num_frames, dim]: a random start and a random walk."""
    rng = np.random.default_rng(seed)
    start = rng.normal(size=(num_videos, 1, dim))
    walk = np.cumsum(rng.normal(scale=drift, size=(num_videos, num_frames, dim)), axis=1)
    x = start + walk
    return list((x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32))


def transform(frames: np.ndarray, rng: np.random.Generator, strength: float, noise: float):
    """The feature-level copy transformation of one stitched query (or pair); every frame keeps
    its norm, offset and noise scale with it."""
    norm = np.linalg.norm(frames, axis=-1, keepdims=True)
    scale = float(np.mean(norm)) / np.sqrt(frames.shape[-1])
    offset = rng.normal(scale=strength * scale, size=(1, frames.shape[-1]))
    x = frames + offset + rng.normal(scale=noise * scale, size=frames.shape)
    return (x * norm / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(
        np.float32
    )


class PairSampler:
    """Pairs of consecutive frames of stitched queries with a chosen share of transitions.

    Negatives are frames `step` ∈ [1, max_step] apart in one video (copies play at up to
    `max_step`× speed); positives join two different videos, or, with probability `jump_share`,
    two frames at least `min_jump` apart in one video.
    """

    def __init__(
        self,
        videos: Sequence[np.ndarray],
        *,
        jump_share: float = 0.3,
        max_step: int = 2,
        min_jump: int = 8,
        strength: float = 0.3,
        noise: float = 0.1,
    ):
        self.videos = [v for v in videos if len(v) > max_step]
        if len(self.videos) < 2:
            raise ValueError("need at least two videos longer than max_step frames")
        self.jump_share, self.max_step, self.min_jump = jump_share, max_step, min_jump
        self.strength, self.noise = strength, noise

    def _frame(self, rng, v: int) -> int:
        return int(rng.integers(len(self.videos[v])))

    def _positive(self, rng) -> tuple[np.ndarray, np.ndarray]:
        a = int(rng.integers(len(self.videos)))
        video = self.videos[a]
        if rng.random() < self.jump_share and len(video) > 2 * self.min_jump:
            i = self._frame(rng, a)
            far = np.abs(np.arange(len(video)) - i) >= self.min_jump
            return video[i], video[rng.choice(np.flatnonzero(far))]
        b = (a + 1 + int(rng.integers(len(self.videos) - 1))) % len(self.videos)
        return video[self._frame(rng, a)], self.videos[b][self._frame(rng, b)]

    def _negative(self, rng) -> tuple[np.ndarray, np.ndarray]:
        video = self.videos[int(rng.integers(len(self.videos)))]
        step = int(rng.integers(1, self.max_step + 1))
        i = int(rng.integers(len(video) - step))
        return video[i], video[i + step]

    def sample(self, n: int, positive_share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """`n` pairs [n, 2, D] and labels [n] (1: transition), deterministic from `seed`."""
        rng = np.random.default_rng(seed)
        labels = (rng.random(n) < positive_share).astype(np.int32)
        pairs = [self._positive(rng) if y else self._negative(rng) for y in labels]
        x = np.stack([transform(np.stack(p), rng, self.strength, self.noise) for p in pairs])
        return x, labels


class StitchedQuery(NamedTuple):
    """A stitched query: frames [T, D], per frame its source video (−1: filler) and position,
    and the true transitions (cut[t] = 1: frame t starts a new span)."""

    frames: np.ndarray
    source: np.ndarray
    position: np.ndarray
    cut: np.ndarray


def stitch_query(
    videos: Sequence[np.ndarray],
    fillers: Sequence[np.ndarray],
    rng: np.random.Generator,
    *,
    num_parts: int = 3,
    part_frames: tuple[int, int] = (8, 16),
    speeds: Sequence[float] = (0.5, 1.0, 1.0, 1.5, 2.0),
    filler_share: float = 0.5,
    strength: float = 0.3,
    noise: float = 0.1,
) -> StitchedQuery:
    """Spans of `videos` at random speeds, with spans of `fillers` (videos outside the database)
    between them in `filler_share` of the gaps."""
    frames, source, position, cut = [], [], [], []

    def add(feats, src, pos):
        frames.append(feats)
        source.append(np.full(len(pos), src))
        position.append(pos)
        cut.append(np.eye(1, len(pos), dtype=np.int32)[0])

    for _ in range(num_parts):
        if fillers and rng.random() < filler_share:
            filler = fillers[int(rng.integers(len(fillers)))]
            n = min(len(filler), int(rng.integers(*part_frames)))
            start = int(rng.integers(len(filler) - n + 1))
            add(filler[start : start + n], -1, np.full(n, -1))
        v = int(rng.integers(len(videos)))
        speed = float(rng.choice(speeds))
        n = int(rng.integers(*part_frames))
        span = min(len(videos[v]) - 1, int(np.ceil((n - 1) * speed)))
        start = int(rng.integers(len(videos[v]) - span))
        pos = np.minimum(start + np.floor(np.arange(n) * speed).astype(int), start + span)
        add(videos[v][pos], v, pos)
    x = transform(np.concatenate(frames), rng, strength, noise)
    return StitchedQuery(x, np.concatenate(source), np.concatenate(position), np.concatenate(cut))
