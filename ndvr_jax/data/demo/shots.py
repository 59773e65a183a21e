"""Moving pictures as functions of time: Ken Burns pans/zooms over photos, framed clip excerpts,
shot sequences with cuts or dissolves, and procedural backgrounds that resemble no real source.

Every visual track has `duration` and `frame(t, height, width) -> float32 [H, W, 3]` in [0, 1],
so a copy can sample its source at any time, rate and size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

# (u, v, scale): the crop window's centre as fractions of the feasible range, and its size as a
# fraction of the largest window of the output's aspect ratio that fits in the source picture.
Framing = tuple[float, float, float]
DISSOLVE_SECONDS = 0.5


class Track(Protocol):
    duration: float

    def frame(self, t: float, height: int, width: int) -> np.ndarray: ...


def crop_resize(image: np.ndarray, box: Sequence[float], height: int, width: int) -> np.ndarray:
    """Bilinear resampling of the window `box = (y0, x0, h, w)` of `image` to `[height, width]`.

    Separable gathers (rows, then columns), so it costs O(height * W + height * width) per channel.
    uint8 input is scaled to [0, 1]; the output is float32.
    """
    y0, x0, h, w = box
    rows, wy = _taps(y0, h, height, image.shape[0])
    cols, wx = _taps(x0, w, width, image.shape[1])
    scale = np.float32(1 / 255 if image.dtype == np.uint8 else 1)
    top, bottom = image[rows[0]].astype(np.float32), image[rows[1]].astype(np.float32)
    mixed = top + (bottom - top) * wy[:, None, None]
    left, right = mixed[:, cols[0]], mixed[:, cols[1]]
    return (left + (right - left) * wx[None, :, None]) * scale


def _taps(start: float, extent: float, n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray]:
    pos = start + (np.arange(n_out, dtype=np.float64) + 0.5) * (extent / n_out) - 0.5
    pos = np.clip(pos, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    return (lo, hi), (pos - lo).astype(np.float32)


def resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Whole-image bilinear resize (no copy when the size already matches)."""
    if image.shape[:2] == (height, width):
        return image
    return crop_resize(image, (0, 0, *image.shape[:2]), height, width)


def window(src_hw: tuple[int, int], aspect: float, framing: Framing) -> tuple[float, ...]:
    """Crop box `(y0, x0, h, w)` of aspect `aspect` (width / height) inside a `src_hw` picture."""
    src_h, src_w = src_hw
    u, v, scale = framing
    full_h = min(src_h, src_w / aspect)
    h = full_h * scale
    w = h * aspect
    return ((src_h - h) * v, (src_w - w) * u, h, w)


def _smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


@dataclass(frozen=True)
class Shot:
    """A photo (`[H, W, 3]`) or clip (`[T, H, W, 3]` at `fps`) seen through a moving window."""

    media: np.ndarray
    duration: float
    start: Framing
    end: Framing
    fps: float = 0.0  # clip frame rate; 0 for a still photo
    clip_start: float = 0.0

    def frame(self, t: float, height: int, width: int) -> np.ndarray:
        a = _smoothstep(t / self.duration)
        framing = tuple(s + (e - s) * a for s, e in zip(self.start, self.end, strict=True))
        image = self.media
        if self.fps:
            index = int(np.floor((self.clip_start + t) * self.fps + 1e-6))
            image = image[min(max(index, 0), len(image) - 1)]
        return crop_resize(image, window(image.shape[:2], width / height, framing), height, width)


@dataclass(frozen=True)
class ShotSequence:
    """Shots one after another; each boundary is a hard cut or a short dissolve."""

    shots: tuple[Shot, ...]
    dissolves: tuple[bool, ...]  # one per boundary

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.shots)

    def frame(self, t: float, height: int, width: int) -> np.ndarray:
        starts = np.cumsum([0.0] + [s.duration for s in self.shots])
        i = int(np.clip(np.searchsorted(starts, t, side="right") - 1, 0, len(self.shots) - 1))
        local = t - starts[i]
        image = self.shots[i].frame(local, height, width)
        half = DISSOLVE_SECONDS / 2
        if i + 1 < len(self.shots) and self.dissolves[i] and local > self.shots[i].duration - half:
            other = self.shots[i + 1].frame(0.0, height, width)
            alpha = (local - self.shots[i].duration + half) / DISSOLVE_SECONDS
        elif i > 0 and self.dissolves[i - 1] and local < half:
            prev = self.shots[i - 1]
            other = prev.frame(prev.duration, height, width)
            alpha = (half - local) / DISSOLVE_SECONDS
        else:
            return image
        return image + (other - image) * np.float32(alpha)


@dataclass(frozen=True)
class Procedural:
    """Seeded animated colour field with drifting discs: a background unrelated to any photo."""

    seed: int
    duration: float = float("inf")
    period: float = 2.5

    def frame(self, t: float, height: int, width: int) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        grids = rng.uniform(0.05, 0.95, size=(4, 3, 4, 3)).astype(np.float32)
        discs = rng.uniform(0.0, 1.0, size=(3, 8))  # x, y, vx, vy, radius, r, g, b
        phase = t / self.period
        k = int(np.floor(phase))
        a = np.float32(0.5 - 0.5 * np.cos(np.pi * (phase - k)))
        grid = grids[k % 4] * (1 - a) + grids[(k + 1) % 4] * a
        image = crop_resize(grid, (0, 0, 3, 4), height, width)
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        for x, y, vx, vy, r, *colour in discs:
            cx = _bounce(x + (vx - 0.5) * 0.3 * t) * width
            cy = _bounce(y + (vy - 0.5) * 0.3 * t) * height
            inside = (xx - cx) ** 2 + (yy - cy) ** 2 < (0.08 + 0.12 * r) ** 2 * height * width
            image[inside] = colour
        return image


def _bounce(x: float) -> float:
    """Triangle wave in [0, 1]: a position that bounces between the edges."""
    x = x % 2.0
    return x if x <= 1.0 else 2.0 - x
