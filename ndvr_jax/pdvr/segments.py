"""Per-frame decisions of the VFRM recurrence merged into copied segments.

A query frame copies every candidate whose copy probability reaches the threshold (or, with
`exclusive`, only its best one; two database videos may hold the same copied shot). Consecutive
copying frames of one candidate form a segment while the aligned position moves on consistently
(between −`max_back` and `max_jump` reference frames per query frame) and the gap between them is
at most `max_gap` frames; a segment needs `min_frames` copying frames. Its source span is the
extent of the aligned positions (`source_span="extent"`) or, with `"fit"`, the query span mapped
through a straight line fitted to them (speed clipped to `speeds`): in a shot whose frames all
look alike the positions stall, and the line keeps the span as long as the copy. Units are frames
here; `to_seconds` converts with the videos' timestamps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Segment(NamedTuple):
    """Query [query_start, query_end) copies source [source_start, source_end) of `source`."""

    query_start: float
    query_end: float
    source: int | str
    source_start: float
    source_end: float
    score: float


@dataclasses.dataclass(frozen=True)
class MergeRule:
    """How per-frame decisions join into segments."""

    threshold: float = 0.5
    exclusive: bool = False  # True: a frame copies at most one (its best) candidate
    max_gap: int = 2
    max_back: int = 2
    max_jump: int = 4
    min_frames: int = 5
    source_span: str = "extent"  # extent | fit
    speeds: tuple[float, float] = (0.5, 2.0)  # speed range of the "fit" line


def _probability(score: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(score, -60.0, 60.0)))


def frame_decisions(score: np.ndarray, rule: MergeRule) -> np.ndarray:
    """[T, C] bool: frame t copies candidate c (probability ≥ threshold; if exclusive, only the
    frame's best candidate)."""
    copies = _probability(score) >= rule.threshold
    if rule.exclusive:
        best = np.argmax(score, axis=1)
        copies &= np.arange(score.shape[1])[None, :] == best[:, None]
    return copies


def _runs(frames: np.ndarray, position: np.ndarray, rule: MergeRule) -> list[np.ndarray]:
    """Splits a candidate's copying frames where the gap or the position step is too large."""
    gap, step = np.diff(frames), np.diff(position[frames])
    joined = (gap <= rule.max_gap + 1) & (step >= -rule.max_back) & (step <= rule.max_jump * gap)
    return np.split(frames, np.flatnonzero(~joined) + 1)


def _source_span(run: np.ndarray, r: np.ndarray, rule: MergeRule, length: int | None):
    """[start, end) on the source of a run of query frames aligned to positions `r`."""
    if rule.source_span == "extent":
        return int(r.min()), int(r.max()) + 1
    if rule.source_span != "fit":
        raise ValueError(f"source_span must be extent or fit, not {rule.source_span!r}")
    slope = np.polyfit(run, r, 1)[0] if len(run) > 1 else 1.0
    slope = float(np.clip(slope, *rule.speeds))
    offset = float(np.median(r - slope * run))
    start = max(0, int(round(offset + slope * run[0])))
    end = int(round(offset + slope * (run[-1] + 1)))
    end = min(end, length) if length is not None else end
    return start, max(end, start + 1)


def merge_segments(
    score: np.ndarray,
    position: np.ndarray,
    rule: MergeRule = MergeRule(),
    ref_lengths: Sequence[int] | None = None,
) -> list[Segment]:
    """Segments in frame units (source = candidate index) from [T, C] logits and positions,
    ordered by query start; `ref_lengths` (frames per candidate) bounds fitted source spans."""
    score, position = np.asarray(score), np.asarray(position)
    copies, prob = frame_decisions(score, rule), _probability(score)
    segments = []
    for c in range(score.shape[1]):
        frames = np.flatnonzero(copies[:, c])
        for run in _runs(frames, position[:, c], rule) if len(frames) else []:
            if len(run) >= rule.min_frames:
                length = None if ref_lengths is None else int(ref_lengths[c])
                r0, r1 = _source_span(run, position[run, c], rule, length)
                segments.append(
                    Segment(int(run[0]), int(run[-1]) + 1, c, r0, r1, float(prob[run, c].mean()))
                )
    return sorted(segments)


def to_seconds(
    segment: Segment,
    query_times: Sequence[float],
    source_times: Sequence[float],
    source_id: str,
) -> Segment:
    """A frame-unit segment in seconds: frame i spans [times[i], times[i] + frame step)."""

    def seconds(times, start, end):
        times = np.asarray(times, np.float64)
        step = float(np.median(np.diff(times))) if len(times) > 1 else 1.0
        edges = np.append(times, times[-1] + step)
        return float(edges[int(start)]), float(edges[int(end)])

    q0, q1 = seconds(query_times, segment.query_start, segment.query_end)
    s0, s1 = seconds(source_times, segment.source_start, segment.source_end)
    return Segment(q0, q1, source_id, s0, s1, segment.score)
