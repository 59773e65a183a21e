"""Frame-level similarity maps for localisation, of whole-frame `[T, D]` or regional `[T, R, D]`
features (region 0 the whole frame; `python -m ndvr_jax.extract --config.zoom=3`).

Regional frames compare by `ndvr_jax.regional.similarity`'s `inset` reduction: whole frame
against whole frame, or either frame as a whole against a region of the other less `margin`, so
a source shown small inside the query (picture-in-picture) still aligns frame by frame.
"""

from __future__ import annotations

import numpy as np

from ndvr_jax.regional.similarity import REGION_MARGIN, frame_similarity


def whole_frames(frames: np.ndarray) -> np.ndarray:
    """`[T, D]`: the features themselves, or region 0 (the whole frame) of regional ones."""
    return frames[:, 0] if frames.ndim == 3 else frames


def similarity_map(
    query: np.ndarray, reference: np.ndarray, margin: float = REGION_MARGIN
) -> np.ndarray:
    """`[Tq, Tr]` frame similarities of L2-normalised frames (cosine for `[T, D]`; the `inset`
    reduction of the region cosines for `[T, R, D]`)."""
    if query.ndim != reference.ndim or query.shape[1:] != reference.shape[1:]:
        raise ValueError(
            f"query frames {query.shape[1:]} and reference frames {reference.shape[1:]} differ: "
            "extract both with the same settings"
        )
    if query.ndim == 2:
        return query @ reference.T
    sim = np.einsum("trd,sud->tsru", query, reference, optimize=True)
    return frame_similarity(sim, "inset", margin, xp=np)  # numpy: maps of every shape
