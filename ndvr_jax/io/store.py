"""Feature store: one feature file per video, a JSON sidecar, and `<id>\\t<path>` list files.

Layouts:
  * `ndvr-dml`: `<root>/<id>.npy` holding `[n, D]` float32 (the original ndvr-dml layout);
  * `ausil`:    `<root>/<id>/wlaf.npz` with key `features` (the AuSiL layout).
Both keep `<root>/<id>.json` beside: timestamps and extraction metadata. The sidecar is written
last, atomically, and marks the video as finished: a rerun skips a video only if its sidecar
exists and agrees with the feature file's shape, so a half-written file is never trusted.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ndvr_jax.io.atomic import atomic_write, save_json_atomic, save_npy_atomic, save_npz_atomic

LAYOUTS = ("ndvr-dml", "ausil")
_SAFE_ID = re.compile(r"^[^\s/\\]+$")


def read_id_path_list(path: str | os.PathLike) -> list[tuple[str, str]]:
    """Reads `<id>\\t<path>` or `<id> <path>` lines (blank lines and `#` comments skipped).

    Relative paths are resolved against the list file's folder. Raises ValueError on a malformed
    line or a repeated id, naming the line.
    """
    path = Path(path)
    entries, seen = [], set()
    with open(path) as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            parts = line.split("\t", 1) if "\t" in line else line.strip().split(None, 1)
            if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
                raise ValueError(f"{path}:{number}: expected '<id> <path>', got {line!r}")
            video_id, item = parts[0].strip(), parts[1].strip()
            if video_id in seen:
                raise ValueError(f"{path}:{number}: id {video_id!r} appears twice")
            seen.add(video_id)
            if not os.path.isabs(item):
                item = str(path.parent / item)
            entries.append((video_id, item))
    return entries


def write_id_path_list(path: str | os.PathLike, entries: Iterable[tuple[str, str]]) -> None:
    """Writes `<id>\\t<path>` lines atomically."""
    with atomic_write(path) as f:
        for video_id, item in entries:
            f.write(f"{video_id}\t{item}\n")


class FeatureStore:
    """Feature files of many videos under one folder."""

    def __init__(self, root: str | os.PathLike, layout: str = "ndvr-dml"):
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        self.root = Path(root)
        self.layout = layout
        self.root.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def check_id(video_id: str) -> None:
        """Rejects ids that cannot be file names."""
        if not _SAFE_ID.match(video_id):
            raise ValueError(f"video id {video_id!r} must not contain whitespace or slashes")

    def feature_path(self, video_id: str) -> Path:
        """Where the features of `video_id` live."""
        self.check_id(video_id)
        if self.layout == "ausil":
            return self.root / video_id / "wlaf.npz"
        return self.root / f"{video_id}.npy"

    def meta_path(self, video_id: str) -> Path:
        """Where the sidecar of `video_id` lives."""
        self.check_id(video_id)
        return self.root / f"{video_id}.json"

    def write(self, video_id: str, features: np.ndarray, meta: dict[str, Any]) -> None:
        """Writes features, then the sidecar (with the shape), each atomically."""
        features = np.asarray(features, np.float32)
        if self.layout == "ausil":
            save_npz_atomic(self.feature_path(video_id), features=features)
        else:
            save_npy_atomic(self.feature_path(video_id), features)
        save_json_atomic(self.meta_path(video_id), {**meta, "shape": list(features.shape)})

    def load(self, video_id: str) -> np.ndarray:
        """Reads the features of `video_id`."""
        path = self.feature_path(video_id)
        if self.layout == "ausil":
            with np.load(path) as data:
                return data["features"]
        return np.load(path)

    def load_meta(self, video_id: str) -> dict[str, Any]:
        """Reads the sidecar of `video_id`."""
        with open(self.meta_path(video_id)) as f:
            return json.load(f)

    def is_complete(self, video_id: str) -> bool:
        """True if both files exist and agree (shape in sidecar == feature file shape)."""
        try:
            meta = self.load_meta(video_id)
            if self.layout == "ausil":
                shape = list(self.load(video_id).shape)
            else:
                shape = list(np.load(self.feature_path(video_id), mmap_mode="r").shape)
        except (OSError, ValueError, KeyError, json.JSONDecodeError):
            return False
        return meta.get("shape") == shape

    def write_list(self, video_ids: Iterable[str], name: str = "feature_files.txt") -> Path:
        """Writes the `<id>\\t<feature path>` list of `video_ids` with paths relative to the list's
        folder (as `read_id_path_list` resolves them), so the list works from any working
        directory and moves with the store; returns its path."""
        path = self.root / name
        relative = lambda v: os.path.relpath(self.feature_path(v), path.parent)
        write_id_path_list(path, ((v, relative(v)) for v in video_ids))
        return path
