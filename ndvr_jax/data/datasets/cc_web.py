"""CC_WEB_VIDEO: 24 query sets of web videos labelled by their relation to a seed video.

Labels: E exactly duplicate, S similar, V different version, M major change, L long version
(all positives by default), X dissimilar, -1 video unavailable (negatives).

Two sources are read into one `CCWebVideo`:

`cc_web_video.pickle` (through the restricted unpickler), as the original repositories ship it:

    {'index':        ['', '1_1_Y', '1_2_Y', ...],   # position = video number (0 is a placeholder)
     'queries':      [1, 815, ...],                 # the seed video of each query set
     'ground_truth': [{1: 'E', 2: 'S', ...}, ...],  # per query set: {video number: label}
     'excluded':     [{...}, ...]}                  # optional: per query set, videos that the
                                                    # "clean" protocols drop

ViSiL's variant (`index` as a `{video_id: number}` mapping, ids instead of numbers in `queries`,
`ground_truth` or `excluded`) is accepted too.

The raw CC_WEB_VIDEO files (`root/Video_List.txt`, `root/Seed.txt`, `root/GT/GT_<q>.rst`),
whitespace-separated, one record a line:

    Video_List.txt   <video number> <query number> <source> <file name> [<url>]
    Seed.txt         <query number> <seed video: number or file name>
    GT/GT_<q>.rst    <video: number or file name> <label>

A video's id is its file name without extension (`1_1_Y.flv` -> `1_1_Y`); row i of the feature
array is video number i, so `video_ids[0]` is the empty placeholder id as in the original.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Collection, Iterable, Mapping
from pathlib import Path
from typing import Any

from ndvr_jax.data.datasets.generic import DatasetError
from ndvr_jax.data.safe_pickle import safe_load

__all__ = [
    "LABELS",
    "NEGATIVE_LABELS",
    "POSITIVE_LABELS",
    "CCWebVideo",
    "load_cc_web_pickle",
    "read_cc_web_raw",
]

POSITIVE_LABELS = ("E", "S", "V", "M", "L")
NEGATIVE_LABELS = ("X", "-1")
LABELS = POSITIVE_LABELS + NEGATIVE_LABELS


@dataclasses.dataclass(frozen=True)
class CCWebVideo:
    """CC_WEB_VIDEO with every video referred to by its row (video number)."""

    video_ids: list[str]
    queries: list[int]
    ground_truth: list[dict[int, str]]
    excluded: list[set[int]]

    def __post_init__(self) -> None:
        n = len(self.video_ids)
        if len(self.queries) != len(self.ground_truth):
            raise DatasetError(
                f"CC_WEB_VIDEO: {len(self.queries)} queries but {len(self.ground_truth)} "
                "ground-truth sets"
            )
        if len(self.excluded) != len(self.queries):
            raise DatasetError("CC_WEB_VIDEO: 'excluded' needs one set per query set")
        rows = list(self.queries)
        rows += [v for gt in self.ground_truth for v in gt]
        rows += [v for ex in self.excluded for v in ex]
        bad = sorted({r for r in rows if not 0 <= r < n})
        if bad:
            raise DatasetError(f"CC_WEB_VIDEO: video numbers {bad[:10]} outside 0..{n - 1}")
        labels = {label for gt in self.ground_truth for label in gt.values()}
        if not labels <= set(LABELS):
            raise DatasetError(f"CC_WEB_VIDEO: unknown labels {sorted(labels - set(LABELS))}")

    def labelled(self, query_set: int, labels: Collection[str]) -> list[int]:
        """Rows of query set `query_set` whose label is in `labels`, in ground-truth order."""
        return [v for v, label in self.ground_truth[query_set].items() if label in labels]

    def annotation(self) -> dict[str, dict[str, list[str]]]:
        """The ground truth as `{seed id: {label: [video ids]}}`, for `ndvr_jax.data.annotations`.

        The seed itself stays in its own ground truth, labelled as the file labels it.
        """
        out: dict[str, dict[str, list[str]]] = {}
        for query, gt in zip(self.queries, self.ground_truth, strict=True):
            labels: dict[str, list[str]] = {}
            for row, label in gt.items():
                labels.setdefault(label, []).append(self.video_ids[row])
            out[self.video_ids[query]] = labels
        return out

    def excluded_ids(self) -> dict[str, list[str]]:
        """`{seed video id: [video ids]}` that the "clean" protocols drop."""
        return {
            self.video_ids[q]: sorted(self.video_ids[v] for v in ex)
            for q, ex in zip(self.queries, self.excluded, strict=True)
        }


def _row(value: Any, index: Mapping[str, int], what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value in index:
        return index[value]
    raise DatasetError(f"CC_WEB_VIDEO pickle: {what} {value!r} is neither a number nor a known id")


def _ids_from_index(index: Any) -> list[str]:
    if isinstance(index, (list, tuple)) and all(isinstance(v, str) for v in index):
        return list(index)
    if isinstance(index, Mapping):
        pairs = [(v, k) if isinstance(v, str) else (k, v) for k, v in index.items()]
        if all(isinstance(vid, str) and isinstance(row, int) for vid, row in pairs):
            ids = [""] * (max((row for _, row in pairs), default=-1) + 1)
            for vid, row in pairs:
                ids[row] = vid
            return ids
    raise DatasetError(
        "CC_WEB_VIDEO pickle: 'index' must be a list of video ids or a {video_id: number} mapping"
    )


def load_cc_web_pickle(path: str | os.PathLike) -> CCWebVideo:
    """Reads `cc_web_video.pickle` (original or ViSiL layout) with the restricted unpickler."""
    data = safe_load(path)
    if not isinstance(data, Mapping):
        raise DatasetError(f"{os.fspath(path)}: expected a dict, got {type(data).__name__}")
    missing = {"index", "queries", "ground_truth"} - set(data)
    if missing:
        raise DatasetError(f"{os.fspath(path)}: missing keys {sorted(missing)}")
    video_ids = _ids_from_index(data["index"])
    index = {v: i for i, v in enumerate(video_ids) if v}
    queries = [_row(q, index, "query") for q in data["queries"]]
    ground_truth = [
        {_row(v, index, "ground-truth video"): str(label) for v, label in gt.items()}
        for gt in data["ground_truth"]
    ]
    excluded_raw = data.get("excluded") or [()] * len(queries)
    excluded = [{_row(v, index, "excluded video") for v in ex} for ex in excluded_raw]
    return CCWebVideo(video_ids, queries, ground_truth, excluded)


def _records(path: Path, n_fields: int) -> Iterable[tuple[int, list[str]]]:
    """Yields (line number, fields) of a whitespace-separated file, skipping blank lines."""
    if not path.is_file():
        raise DatasetError(f"CC_WEB_VIDEO file {path} does not exist")
    with open(path, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < n_fields:
                raise DatasetError(f"{path}:{line_no}: expected {n_fields} fields, got {line!r}")
            yield line_no, fields


def _int_field(value: str, path: Path, line_no: int, what: str) -> int:
    if not re.fullmatch(r"\d+", value):
        raise DatasetError(f"{path}:{line_no}: {what} must be a number, got {value!r}")
    return int(value)


def read_cc_web_raw(
    root: str | os.PathLike,
    video_list: str = "Video_List.txt",
    seeds: str = "Seed.txt",
    gt_dir: str = "GT",
) -> CCWebVideo:
    """Reads the raw CC_WEB_VIDEO files under `root` (layout in the module docstring)."""
    root = Path(root)
    by_number: dict[int, str] = {}
    for line_no, fields in _records(root / video_list, 4):
        number = _int_field(fields[0], root / video_list, line_no, "video number")
        if number in by_number:
            raise DatasetError(f"{root / video_list}:{line_no}: video number {number} repeated")
        by_number[number] = os.path.splitext(fields[3])[0]
    if not by_number:
        raise DatasetError(f"{root / video_list} lists no videos")
    video_ids = [""] * (max(by_number) + 1)
    for number, vid in by_number.items():
        video_ids[number] = vid
    index = {v: i for i, v in enumerate(video_ids) if v}

    def row(token: str, path: Path, line_no: int) -> int:
        if re.fullmatch(r"\d+", token):
            number = int(token)
            if number in by_number:
                return number
        elif os.path.splitext(token)[0] in index:
            return index[os.path.splitext(token)[0]]
        raise DatasetError(f"{path}:{line_no}: video {token!r} is not in {video_list}")

    seed_of: dict[int, int] = {}
    for line_no, fields in _records(root / seeds, 2):
        query = _int_field(fields[0], root / seeds, line_no, "query number")
        seed_of[query] = row(fields[1], root / seeds, line_no)
    queries, ground_truth = [], []
    for query in sorted(seed_of):
        gt_path = root / gt_dir / f"GT_{query}.rst"
        labels: dict[int, str] = {}
        for line_no, fields in _records(gt_path, 2):
            if fields[1] not in LABELS:
                raise DatasetError(f"{gt_path}:{line_no}: unknown label {fields[1]!r}")
            labels[row(fields[0], gt_path, line_no)] = fields[1]
        queries.append(seed_of[query])
        ground_truth.append(labels)
    return CCWebVideo(video_ids, queries, ground_truth, [set() for _ in queries])
