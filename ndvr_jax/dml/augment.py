"""Visual copy augmentations of decoded frames, for self-supervised DML (`ndvr_jax.dml.selfsup`).

A copy applies a random chain of 1..`max_transforms` of `TRANSFORMS` to every frame of a video
with one draw of parameters (the demo benchmark's transformations, `ndvr_jax.data.demo.transforms`:
crop, flip, rotation, colour/saturation, gamma, grayscale, blur, noise, border, picture-in-picture
in a generated background, logo, text) plus `inset`: another video shown small inside this one
(picture-in-picture the other way). Frames are the extraction's square canvases: the letterbox is
cut off first, the transformed picture placed back as the extraction places a decoded frame.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ndvr_jax.data.demo import transforms
from ndvr_jax.data.demo.shots import resize
from ndvr_jax.io.video import fit_to_square

TRANSFORMS = (*transforms.TRANSFORMS, "inset")
_INSET_SCALE = (0.25, 0.45)


def sample_chain(rng: np.random.Generator, max_transforms: int = 3) -> list[dict]:
    """1..`max_transforms` distinct transformations (each with its parameters), in random order."""
    count = int(rng.integers(1, max_transforms + 1))
    names = rng.choice(TRANSFORMS, size=count, replace=False)
    return [_sample(str(name), rng) for name in names]


def _sample(name: str, rng: np.random.Generator) -> dict:
    if name == "inset":
        u = lambda lo, hi: round(float(rng.uniform(lo, hi)), 3)
        return {"name": name, "scale": u(*_INSET_SCALE), "u": u(0, 1), "v": u(0, 1)}
    return transforms.sample(name, rng)


def content_box(frames: np.ndarray) -> tuple[slice, slice]:
    """Rows and columns of `[T, S, S, 3]` canvases outside the all-black letterbox bands."""
    lit = frames.max(axis=(0, 3)) > 0
    rows, cols = np.flatnonzero(lit.any(axis=1)), np.flatnonzero(lit.any(axis=0))
    if not rows.size:
        return slice(None), slice(None)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _inset(host: np.ndarray, guest: np.ndarray, p: dict) -> np.ndarray:
    h, w = host.shape[:2]
    ph, pw = max(2, round(h * p["scale"])), max(2, round(w * p["scale"]))
    y0, x0 = round((h - ph) * p["v"]), round((w - pw) * p["u"])
    out = host.copy()
    out[y0 : y0 + ph, x0 : x0 + pw] = resize(guest, ph, pw)
    return out


def augment_frames(
    frames: np.ndarray,
    timestamps: Sequence[float],
    chain: Sequence[dict],
    other: np.ndarray | None = None,
    mode: str = "pad",
) -> np.ndarray:
    """The copy of uint8 `[T, S, S, 3]` canvases under `chain` (`sample_chain`); `other`, the
    canvases of another video, is what `inset` shows (frame i of the copy shows its frame
    i mod len(other); an `inset` without `other` is skipped); `mode` is the extraction's resize
    mode (`pad`: scaled to fit and letterboxed again; `crop`: scaled to cover, centre cut)."""
    rows, cols = content_box(frames)
    guest_box = content_box(other) if other is not None else None
    size = frames.shape[1]
    out = np.empty_like(frames)
    for i, (frame, t) in enumerate(zip(frames, timestamps, strict=True)):
        image = frame[rows, cols].astype(np.float32) / 255
        for spec in chain:
            if spec["name"] != "inset":
                image = transforms.apply(spec, image, float(t))
            elif other is not None:
                guest = other[i % len(other)][guest_box].astype(np.float32) / 255
                image = _inset(image, guest, spec)
        h, w = image.shape[:2]
        scale = size / (max(h, w) if mode == "pad" else min(h, w))
        image = resize(image, max(1, round(h * scale)), max(1, round(w * scale)))
        out[i] = fit_to_square(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8), size, mode)
    return out
