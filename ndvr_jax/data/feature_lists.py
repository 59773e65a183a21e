"""Feature list files and per-video frame-feature arrays, as the original systems store them.

A feature list names one `.npy` file per video, one video a line:

    <video_id>\\t<path/to/features.npy>

(the original's format; a run of spaces also separates the fields, blank lines and `#` comments
are skipped). Relative paths resolve against the list file's folder, as everywhere in the
toolkit (the original took them relative to the current directory: write absolute paths, or
keep the list beside the features, to use one list with both).

Each `.npy` holds `[n_frames, D]` frame features. `load_frame_features` checks what the
original silently got wrong (a missing file, a wrong number of dimensions or width, an empty
array, NaN or inf rows) and raises `FeatureError` naming the video.

The original's video vector is `ndvr_jax.search.global_vector` (one implementation for the
toolkit). `pad_frame_batch` stacks videos of different lengths for late fusion
(`ndvr_jax.dml.model.embed_video_late`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ndvr_jax.io.store import read_id_path_list

__all__ = [
    "FeatureError",
    "check_frame_features",
    "load_frame_features",
    "pad_frame_batch",
    "read_feature_list",
]


class FeatureError(ValueError):
    """A feature list or feature file is missing or malformed."""


def read_feature_list(path: str | os.PathLike) -> dict[str, str]:
    """Reads `<video_id>\\t<path>` lines into `{video_id: path}` (in file order).

    Parsing is `ndvr_jax.io.store.read_id_path_list`: relative paths resolve against the list
    file's folder.

    Raises:
      FeatureError: the list is missing, a line has no path, or an id appears twice.
    """
    if not Path(path).is_file():
        raise FeatureError(f"feature list {os.fspath(path)} does not exist")
    try:
        return dict(read_id_path_list(path))
    except ValueError as e:
        raise FeatureError(str(e)) from None


# np.load parses every header with `ast`, and CPython 3.11 can raise "AST constructor recursion
# depth mismatch" when threads parse at once (seen in `dml.triplets`' loader pool): loads take
# turns; the checks after them still run in parallel.
_NPY_HEADERS = threading.Lock()


def load_frame_features(
    path: str | os.PathLike,
    video_id: str | None = None,
    expected_dim: int | None = None,
    dtype: np.dtype | type = np.float32,
    allow_empty: bool = False,
) -> np.ndarray:
    """Loads one video's `[n_frames, D]` features and checks them.

    Raises:
      FeatureError: missing or unreadable file, not 2-D, width != expected_dim, no frames
        (unless `allow_empty`), or rows holding NaN/inf (the message names the video and the
        first bad rows).
    """
    name = f"video {video_id!r}" if video_id is not None else "features"
    if not os.path.isfile(path):
        raise FeatureError(f"{name}: feature file {os.fspath(path)!r} does not exist")
    try:
        with _NPY_HEADERS:
            array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise FeatureError(f"{name}: cannot read {os.fspath(path)!r} as .npy: {e}") from e
    check_frame_features(array, video_id, path, expected_dim, allow_empty)
    return array.astype(dtype, copy=False)


def check_frame_features(
    array: np.ndarray,
    video_id: str | None,
    path: str | os.PathLike,
    expected_dim: int | None = None,
    allow_empty: bool = False,
) -> None:
    """Raises FeatureError naming the video and `path` unless `array` is real `[n, D]` features
    with `expected_dim` columns, finite rows (the first bad ones named) and, unless
    `allow_empty`, at least one row."""
    name = f"video {video_id!r}" if video_id is not None else "features"
    if array.ndim != 2:
        raise FeatureError(
            f"{name}: expected [n_frames, D] features in {os.fspath(path)!r}, got shape "
            f"{array.shape}"
        )
    if array.shape[0] == 0 and not allow_empty:
        raise FeatureError(f"{name}: {os.fspath(path)!r} holds no frames (shape {array.shape})")
    if expected_dim is not None and array.shape[1] != expected_dim:
        raise FeatureError(
            f"{name}: features in {os.fspath(path)!r} are {array.shape[1]}-d, expected "
            f"{expected_dim}-d"
        )
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise FeatureError(f"{name}: {os.fspath(path)!r} has non-real dtype {array.dtype}")
    bad = np.flatnonzero(~np.isfinite(array).all(axis=1))
    if bad.size:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if bad.size > 10 else "")
        raise FeatureError(
            f"{name}: {bad.size} of {array.shape[0]} frame rows in {os.fspath(path)!r} "
            f"contain NaN or inf (rows {shown})"
        )


def pad_frame_batch(
    videos: Sequence[np.ndarray], length: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Stacks `[n_i, D]` frame arrays into float32 `[B, length, D]` zero-padded frames and a
    `[B, length]` bool mask of real frames (`length` defaults to the longest video).
    """
    if not videos:
        raise ValueError("no videos to pad")
    dims = {v.shape[1] for v in videos}
    if len(dims) != 1:
        raise FeatureError(f"videos have different feature widths {sorted(dims)}")
    longest = max(len(v) for v in videos)
    length = longest if length is None else length
    if longest > length:
        raise ValueError(f"a video has {longest} frames, more than length={length}")
    frames = np.zeros((len(videos), length, dims.pop()), np.float32)
    mask = np.zeros((len(videos), length), bool)
    for i, v in enumerate(videos):
        frames[i, : len(v)], mask[i, : len(v)] = v, True
    return frames, mask
