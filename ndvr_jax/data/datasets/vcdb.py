"""VCDB: 528 core videos with annotated copied segments, plus ~100k background distractors.

`vcdb.pickle` (read through the restricted unpickler), as the original repository ships it:

    {'index':       [video_id, ...],        # 528 core videos first, then the distractors
     'video_pairs': [{'videos': [i, j],      # rows into 'index' (or video ids)
                      'overlap': [oi, oj]},  # fraction of each video inside the copied segment
                     ...],
     'distractors': [...]}                   # optional: distractor rows or ids; without it,
                                             # every row from 528 on is a distractor

Annotation CSVs of the raw VCDB release (one file per query set / topic, `annotation/<topic>.txt`),
one copied segment a line, times as `HH:MM:SS` (also `MM:SS` or seconds, fractions allowed):

    videoA,videoB,startA,endA,startB,endB

`vcdb_from_annotations` turns those segments into pairs: the overlap of a video in a pair is the
length of the union of its annotated segments with the other video divided by its duration
(capped at 1). Durations come from the caller; at 1 frame per second the frame count of a
video's feature file is a good estimate. Video ids are file names without extension.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ndvr_jax.data.datasets.generic import DatasetError
from ndvr_jax.data.safe_pickle import safe_load

__all__ = [
    "CORE_SIZE",
    "ORIGINAL_EXCLUDED_DISTRACTORS",
    "VCDB",
    "SegmentPair",
    "load_vcdb_pickle",
    "parse_time",
    "read_vcdb_annotations",
    "vcdb_from_annotations",
]

CORE_SIZE = 528
# Rows of two distractors that the original found to share segments with core videos; its
# triplet generator never uses them as negatives.
ORIGINAL_EXCLUDED_DISTRACTORS = (6171, 97284)


@dataclasses.dataclass(frozen=True, eq=False)
class VCDB:
    """Video ids, annotated pairs (rows into `video_ids`) with overlaps, distractor rows."""

    video_ids: list[str]
    pairs: np.ndarray  # [P, 2] int64
    overlaps: np.ndarray  # [P, 2] float64
    distractors: np.ndarray  # [M] int64

    def __post_init__(self) -> None:
        n = len(self.video_ids)
        if self.pairs.ndim != 2 or self.pairs.shape[1] != 2:
            raise DatasetError(f"VCDB: pairs must be [P, 2], got {self.pairs.shape}")
        if self.overlaps.shape != self.pairs.shape:
            raise DatasetError("VCDB: overlaps must have the shape of pairs")
        for what, rows in (("pair", self.pairs), ("distractor", self.distractors)):
            if rows.size and (rows.min() < 0 or rows.max() >= n):
                raise DatasetError(f"VCDB: {what} rows outside 0..{n - 1}")


@dataclasses.dataclass(frozen=True)
class SegmentPair:
    """One annotated copy: [start_a, end_a] of video_a matches [start_b, end_b] of video_b."""

    topic: str
    video_a: str
    video_b: str
    start_a: float
    end_a: float
    start_b: float
    end_b: float


def _row(value: Any, index: Mapping[str, int], what: str) -> int:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str) and value in index:
        return index[value]
    raise DatasetError(f"VCDB pickle: {what} {value!r} is neither a row nor a known video id")


def load_vcdb_pickle(path: str | os.PathLike, core_size: int = CORE_SIZE) -> VCDB:
    """Reads `vcdb.pickle` (layout in the module docstring) with the restricted unpickler."""
    src = os.fspath(path)
    data = safe_load(path)
    if not isinstance(data, Mapping) or "index" not in data:
        raise DatasetError(f"{src}: expected a dict with an 'index' list")
    video_ids = [str(v) for v in data["index"]]
    index = {v: i for i, v in enumerate(video_ids)}
    raw_pairs = data.get("video_pairs", data.get("pairs"))
    if raw_pairs is None:
        raise DatasetError(f"{src}: missing 'video_pairs'")
    pairs, overlaps = [], []
    for k, pair in enumerate(raw_pairs):
        if not isinstance(pair, Mapping) or {"videos", "overlap"} - set(pair):
            raise DatasetError(f"{src}: video_pairs[{k}] needs 'videos' and 'overlap'")
        if len(pair["videos"]) != 2 or len(pair["overlap"]) != 2:
            raise DatasetError(f"{src}: video_pairs[{k}] needs two videos and two overlaps")
        pairs.append([_row(v, index, "pair video") for v in pair["videos"]])
        overlaps.append([float(o) for o in pair["overlap"]])
    if "distractors" in data:
        distractors = [_row(v, index, "distractor") for v in data["distractors"]]
    else:
        distractors = list(range(core_size, len(video_ids)))
    return VCDB(
        video_ids,
        np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
        np.asarray(overlaps, dtype=np.float64).reshape(-1, 2),
        np.asarray(distractors, dtype=np.int64),
    )


def parse_time(text: str) -> float:
    """`HH:MM:SS`, `MM:SS` or `SS` (fractions allowed) to seconds."""
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or not all(re.fullmatch(r"\d+(\.\d*)?", p) for p in parts):
        raise ValueError(f"not a time (HH:MM:SS): {text!r}")
    seconds = 0.0
    for part in parts:
        seconds = seconds * 60 + float(part)
    return seconds


def _annotation_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".txt", ".csv"))
        if files:
            return files
        raise DatasetError(f"no .txt/.csv annotation files in {path}")
    raise DatasetError(f"VCDB annotation path {path} does not exist")


def read_vcdb_annotations(path: str | os.PathLike) -> list[SegmentPair]:
    """Reads one annotation file, or every `.txt`/`.csv` file of a folder (one per topic)."""
    segments = []
    for file in _annotation_files(Path(path)):
        with open(file, encoding="utf-8") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                fields = [x.strip() for x in line.split(",")]
                if len(fields) != 6:
                    raise DatasetError(
                        f"{file}:{line_no}: expected 'videoA,videoB,startA,endA,startB,endB', "
                        f"got {line.strip()!r}"
                    )
                try:
                    times = [parse_time(t) for t in fields[2:]]
                except ValueError as e:
                    raise DatasetError(f"{file}:{line_no}: {e}") from None
                if times[1] < times[0] or times[3] < times[2]:
                    raise DatasetError(f"{file}:{line_no}: a segment ends before it starts")
                a, b = (os.path.splitext(v)[0] for v in fields[:2])
                segments.append(SegmentPair(file.stem, a, b, *times))
    return segments


def _union_length(intervals: Iterable[tuple[float, float]]) -> float:
    total, end = 0.0, -np.inf
    for s, e in sorted(intervals):
        if e > end:
            total += e - max(s, end)
            end = e
    return total


def vcdb_from_annotations(
    segments: Sequence[SegmentPair],
    durations: Mapping[str, float],
    distractor_ids: Sequence[str] = (),
) -> VCDB:
    """Builds pairs with overlaps from annotated segments.

    Core videos (sorted ids of every annotated video) come first, then `distractor_ids`.
    A pair of a video with itself is skipped.
    """
    core = sorted({s.video_a for s in segments} | {s.video_b for s in segments})
    missing = [v for v in core if v not in durations or not durations[v] > 0]
    if missing:
        raise DatasetError(f"no positive duration for annotated videos {missing[:10]}")
    overlap_with = set(core) & set(distractor_ids)
    if overlap_with:
        raise DatasetError(f"videos both annotated and distractors: {sorted(overlap_with)[:10]}")
    video_ids = core + list(distractor_ids)
    index = {v: i for i, v in enumerate(video_ids)}
    spans: dict[tuple[int, int], tuple[list, list]] = {}
    for s in segments:
        if s.video_a == s.video_b:
            continue
        ia, ib = index[s.video_a], index[s.video_b]
        seg_a, seg_b = (s.start_a, s.end_a), (s.start_b, s.end_b)
        if ia > ib:
            ia, ib, seg_a, seg_b = ib, ia, seg_b, seg_a
        spans.setdefault((ia, ib), ([], []))
        spans[(ia, ib)][0].append(seg_a)
        spans[(ia, ib)][1].append(seg_b)
    pairs = sorted(spans)
    overlaps = [
        [min(1.0, _union_length(spans[p][k]) / durations[video_ids[p[k]]]) for k in range(2)]
        for p in pairs
    ]
    return VCDB(
        video_ids,
        np.asarray(pairs, dtype=np.int64).reshape(-1, 2),
        np.asarray(overlaps, dtype=np.float64).reshape(-1, 2),
        np.arange(len(core), len(video_ids), dtype=np.int64),
    )
