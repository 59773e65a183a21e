"""Feature store: one feature file per video, a JSON sidecar, and `<id>\\t<path>` list files.

Layouts:
  * `ndvr-dml`: `<root>/<id>.npy` holding `[n, D]` float32 (the original ndvr-dml layout);
  * `ausil`:    `<root>/<id>/wlaf.npz` with key `features` (the AuSiL layout).
Both keep `<root>/<id>.json` beside: timestamps and extraction metadata. The sidecar is written
last, atomically, and marks the video as finished: a rerun skips a video only if its sidecar
exists and agrees with the feature file's shape, so a half-written file is never trusted, and
(`changed_settings`) only if the run's settings and the source file's fingerprint
(`file_fingerprint`: size and modification time) are those the sidecar recorded.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from absl import logging

from ndvr_jax.io.atomic import (
    atomic_write,
    remove_stale_temporaries,
    save_json_atomic,
    save_npy_atomic,
    save_npz_atomic,
)

LAYOUTS = ("ndvr-dml", "ausil")
_SAFE_ID = re.compile(r"^[^\s/\\]+$")


def file_fingerprint(path: str | os.PathLike) -> dict[str, int] | None:
    """Size and modification time (ns) of a file, or None if it cannot be read."""
    try:
        stat = os.stat(path)
    except (OSError, ValueError):
        return None
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def read_id_path_list(
    path: str | os.PathLike, check_id: Callable[[str], None] | None = None
) -> list[tuple[str, str]]:
    """Reads `<id>\\t<path>` or `<id> <path>` lines (blank lines and `#` comments skipped).

    Bytes that are not UTF-8 are kept (`surrogateescape`), so any file name the system allows
    reads back as the same name. Relative paths are resolved against the list file's folder.
    `check_id(id)`, if given, vets every id (raising ValueError) before anything is returned.
    Raises FileNotFoundError for a missing list, ValueError on a malformed line, a repeated or
    rejected id, naming the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"list {os.fspath(path)!r} does not exist (or is not a file)")
    entries, seen = [], set()
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for number, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            where = f"{os.fspath(path)}:{number}"
            video_id, item = _split_line(line, where)
            if video_id in seen:
                raise ValueError(f"{where}: id {video_id!r} appears twice (ids must be unique)")
            if check_id is not None:
                try:
                    check_id(video_id)
                except ValueError as e:
                    raise ValueError(f"{where}: {e}") from None
            seen.add(video_id)
            entries.append((video_id, item if os.path.isabs(item) else str(path.parent / item)))
    return entries


def _split_line(line: str, where: str) -> tuple[str, str]:
    """`(id, path)` of one list line: split at the first tab, or else at the first blanks."""
    parts = line.split("\t", 1) if "\t" in line else line.strip().split(None, 1)
    if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
        raise ValueError(f"{where}: expected '<id> <path>' (or '<id>\\t<path>'), got {line!r}")
    return parts[0].strip(), parts[1].strip()


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
        removed = remove_stale_temporaries(self.root)
        if removed:
            logging.warning("removed %d temporary files of killed writes in %s", len(removed), root)

    @staticmethod
    def check_id(video_id: str) -> None:
        """Rejects ids that cannot be file names (empty, `.`, `..`, whitespace, slashes)."""
        if not _SAFE_ID.match(video_id) or video_id in (".", ".."):
            raise ValueError(
                f"video id {video_id!r} cannot be a file name: it must not be empty, '.' or "
                "'..', nor contain whitespace or slashes"
            )

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

    def changed_settings(self, video_id: str, expected: Mapping[str, Any]) -> list[str]:
        """Keys of `expected` whose values differ from those in the sidecar of `video_id` (all of
        them if it has none), compared as JSON reads them back."""
        try:
            meta = self.load_meta(video_id)
        except (OSError, ValueError):
            meta = {}
        expected = json.loads(json.dumps(dict(expected)))
        return [key for key, value in expected.items() if meta.get(key) != value]

    def write_list(self, video_ids: Iterable[str], name: str = "feature_files.txt") -> Path:
        """Writes the `<id>\\t<feature path>` list of `video_ids` with paths relative to the list's
        folder (as `read_id_path_list` resolves them), so the list works from any working
        directory and moves with the store; returns its path."""
        path = self.root / name
        relative = lambda v: os.path.relpath(self.feature_path(v), path.parent)
        write_id_path_list(path, ((v, relative(v)) for v in video_ids))
        return path
