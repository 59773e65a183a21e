"""The toolkit's own dataset format.

Dataset file (JSON, UTF-8), e.g. `demo_data/dataset.json`:

    {
      "format": "ndvr-jax-dataset",
      "version": 1,
      "name": "demo",
      "videos": [
        {"id": "v0000", "group": 0, "split": "train"},
        {"id": "v0001", "group": 0, "split": "test"},
        {"id": "v0002", "group": -1, "split": "test"}
      ],
      "queries": {"test": ["v0001"]}
    }

- `videos`: every video once, in the order that feature arrays follow (row i of
  `<name>_features.npy` is `videos[i]`). `id` is the feature-list id; `group` is an integer near-
  duplicate group (videos in one group are copies of each other), -1 for a video in no group (a
  distractor: a negative for every other video); `split` is any string ("train", "test", ...).
- `queries` (optional): for each split, the ids used as queries when evaluating on that split.
  Every other video of the split is the database; a query's relevant videos are the other
  members of its group in the split.

FIVR-style `annotation.json` files are read by `ndvr_jax.data.annotations`.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from ndvr_jax.io.atomic import save_json_atomic

__all__ = [
    "FORMAT",
    "VERSION",
    "DatasetError",
    "GenericDataset",
    "load_generic_dataset",
    "preview_ids",
    "save_generic_dataset",
]

FORMAT = "ndvr-jax-dataset"
VERSION = 1


class DatasetError(ValueError):
    """A dataset or annotation file is missing or malformed."""


@dataclasses.dataclass(frozen=True, eq=False)
class GenericDataset:
    """Videos with near-duplicate groups and splits; see the module docstring for the file."""

    name: str
    video_ids: list[str]
    groups: np.ndarray  # [N] int64, -1 = no group
    splits: list[str]
    queries: dict[str, list[str]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.video_ids)
        duplicates = [v for v, count in collections.Counter(self.video_ids).items() if count > 1]
        if duplicates:
            raise DatasetError(
                f"dataset {self.name!r}: ids listed twice: {preview_ids(duplicates)}"
            )
        if self.groups.shape != (n,) or len(self.splits) != n:
            raise DatasetError(f"dataset {self.name!r}: ids, groups and splits differ in length")
        if (self.groups < -1).any():
            raise DatasetError(f"dataset {self.name!r}: groups must be >= 0, or -1 for none")
        index = self.index()
        for split, ids in self.queries.items():
            for q in ids:
                if q not in index:
                    raise DatasetError(f"dataset {self.name!r}: query {q!r} is not a video")
                if self.splits[index[q]] != split:
                    raise DatasetError(
                        f"dataset {self.name!r}: query {q!r} is listed for split {split!r} but "
                        f"the video is in split {self.splits[index[q]]!r}"
                    )

    def index(self) -> dict[str, int]:
        """`{video_id: row}`."""
        return {v: i for i, v in enumerate(self.video_ids)}

    def split_indices(self, split: str | None) -> np.ndarray:
        """Rows of the videos in `split` (all rows for None)."""
        if split is None:
            return np.arange(len(self.video_ids))
        rows = np.flatnonzero(np.asarray(self.splits) == split)
        if rows.size == 0:
            raise DatasetError(
                f"dataset {self.name!r} has no split {split!r} (splits: {sorted(set(self.splits))})"
            )
        return rows

    def relevant(self, query_id: str) -> set[str]:
        """The other videos of the query's group within its split (empty for group -1)."""
        index = self.index()
        q = index[query_id]
        if self.groups[q] < 0:
            return set()
        same = (self.groups == self.groups[q]) & (np.asarray(self.splits) == self.splits[q])
        return {self.video_ids[i] for i in np.flatnonzero(same) if i != q}


def _require(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in obj:
        raise DatasetError(f"{where}: missing key {key!r}")
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DatasetError(f"{where}: {key!r} must be {getattr(kind, '__name__', kind)}")
    return value


def load_generic_dataset(path: str | os.PathLike) -> GenericDataset:
    """Reads and checks a dataset JSON file in the format above."""
    src = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            obj = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"dataset file {src} does not exist") from None
    except json.JSONDecodeError as e:
        raise DatasetError(f"{src}: not valid JSON: {e}") from e
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise DatasetError(f'{src}: not an {FORMAT!r} file (missing "format": "{FORMAT}")')
    if obj.get("version") != VERSION:
        raise DatasetError(f"{src}: unsupported version {obj.get('version')!r} (want {VERSION})")
    name = _require(obj, "name", str, src)
    videos = _require(obj, "videos", list, src)
    ids, groups, splits = [], [], []
    for i, video in enumerate(videos):
        where = f"{src}: videos[{i}]"
        if not isinstance(video, dict):
            raise DatasetError(f"{where}: must be an object")
        ids.append(_require(video, "id", str, where))
        groups.append(_require(video, "group", int, where))
        splits.append(_require(video, "split", str, where))
    queries = obj.get("queries", {})
    if not isinstance(queries, dict) or not all(
        isinstance(v, list) and all(isinstance(q, str) for q in v) for v in queries.values()
    ):
        raise DatasetError(f"{src}: 'queries' must map split names to lists of video ids")
    return GenericDataset(name, ids, np.asarray(groups, dtype=np.int64), splits, dict(queries))


def save_generic_dataset(path: str | os.PathLike, dataset: GenericDataset) -> None:
    """Writes `dataset` atomically in the format above."""
    obj = {
        "format": FORMAT,
        "version": VERSION,
        "name": dataset.name,
        "videos": [
            {"id": v, "group": int(g), "split": s}
            for v, g, s in zip(dataset.video_ids, dataset.groups, dataset.splits, strict=True)
        ],
        "queries": dataset.queries,
    }
    save_json_atomic(path, obj, indent=1)


def preview_ids(items: Sequence[object], limit: int = 10) -> str:
    """`'a', 'b', ...`: the first `limit` items for an error message."""
    shown = ", ".join(repr(v) for v in items[:limit])
    return shown + (", ..." if len(items) > limit else "")
