"""Regional frame features `[T, R, D]` on disk: loading, checks, and PCA whitening of regions.

Whitening (ViSiL whitens its region vectors): fitted on region vectors of an unlabelled corpus
(`fit_region_whitening`), saved as `.npz` (`mean`, `weights`; `ndvr_jax.ausil.model`'s
`PCAWhitening`) and applied per region as L2 -> `(x − mean) @ weights` -> L2.
"""

from __future__ import annotations

import os

import numpy as np

from ndvr_jax.ausil.model import PCAWhitening, fit_pca_whitening
from ndvr_jax.data.feature_lists import FeatureError, check_frame_features
from ndvr_jax.io.store import read_id_path_list

# Components of a whitening fitted on a database (`--region_pca=database`); at most D and the
# number of vectors less one.
DATABASE_COMPONENTS = 512


def load_region_features(path: str | os.PathLike, video_id: str | None = None) -> np.ndarray:
    """One video's regional MAC `[T, R, D]` float32 (whole-frame `[T, D]` reads as R = 1)."""
    name = f"video {video_id!r}" if video_id is not None else "features"
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FeatureError(f"{name}: cannot read {os.fspath(path)!r} as .npy: {e}") from e
    if array.ndim == 2:
        array = array[:, None]
    if array.ndim != 3:
        raise FeatureError(f"{name}: expected [n_frames, R, D] features in {os.fspath(path)!r}, "
                           f"got shape {array.shape}")  # fmt: skip
    check_frame_features(array.reshape(len(array), -1), video_id, path)  # frames, finite
    return array.astype(np.float32, copy=False)


def whiten_regions(features: np.ndarray, pca: PCAWhitening) -> np.ndarray:
    """`[..., D]` region vectors -> L2-normalised whitened `[..., K]`."""
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)
    return unit(pca.apply(unit(np.asarray(features, np.float32))))


def fit_region_whitening(
    feature_list: str | os.PathLike,
    n_components: int | None = None,
    max_vectors: int = 200_000,
    seed: int = 0,
) -> PCAWhitening:
    """Whitening fitted on the region vectors of the videos of a `<id>\\t<path>` feature list
    (at most `max_vectors` of them, drawn uniformly with `seed`); at most D components."""
    videos = [load_region_features(path, v) for v, path in read_id_path_list(feature_list)]
    if not videos:
        raise FeatureError(f"feature list {os.fspath(feature_list)} names no videos")
    return fit_whitening_on(videos, n_components, max_vectors, seed)


def fit_whitening_on(
    videos: list[np.ndarray],
    n_components: int | None = DATABASE_COMPONENTS,
    max_vectors: int = 200_000,
    seed: int = 0,
) -> PCAWhitening:
    """Whitening fitted on the region vectors of `[T, R, D]` (or `[T, D]`) videos, as
    `fit_region_whitening`."""
    vectors = [v.reshape(-1, v.shape[-1]) for v in videos]
    if not vectors:
        raise FeatureError("no videos to fit a region whitening on")
    if len({v.shape[1] for v in vectors}) != 1:
        raise FeatureError("the videos have different feature widths")
    rows = np.concatenate(vectors)
    if len(rows) > max_vectors:
        rows = rows[np.random.default_rng(seed).choice(len(rows), max_vectors, replace=False)]
    n_components = min(n_components or rows.shape[1], rows.shape[1], len(rows) - 1)
    return fit_pca_whitening(rows, n_components)
