"""Which spans of a query's sound copy which database videos, and where: runs of aligned
landmark hits.

A copied span shows as landmark hits of one database video on one offset (database frame minus
query frame), close together in the query. Alignments are taken strongest first: a (video,
offset) whose hits within ±`tolerance` frames number at least `min_hits` claims them; its hits'
query frames split into runs wherever `max_gap_s` passes without one, and every run with at
least `min_hits` hits over at least `min_seconds` is a segment: query span from its first anchor
to its last plus `tail_s`, source span the same shifted by the offset, score
`landmark_score(hits)`. Hits claimed by an alignment are not counted again, so a neighbouring
offset does not repeat a segment; a segment whose query span stronger segments of other sources
cover by more than `exclusive` is dropped (a shared word inside a copied song). The offset is
constant within a segment: a copy played faster or slower drifts off it (no segment).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ndvr_jax.landmarks.fingerprint import LandmarkConfig
from ndvr_jax.landmarks.matching import (
    FUSION_HALF_COUNT,
    LandmarkIndex,
    landmark_score,
    offset_windows,
)
from ndvr_jax.pdvr.segments import Segment


@dataclasses.dataclass(frozen=True)
class SpanRule:
    """When aligned hits make a copied span."""

    # min_seconds and exclusive were chosen on the dev set (`configs/devset.py`, audio segments:
    # VCSL F1 0.455 with neither -> 0.864 with both; min_hits 12 over 8, 20, 30, 50, 80)
    min_hits: int = 12
    min_seconds: float = 2.0  # shorter runs are not copies (a shared word, a jingle)
    tolerance: int = 1  # frames
    max_gap_s: float = 2.0
    tail_s: float = 0.4  # a run's last anchor pairs with peaks up to 0.8 s later
    max_alignments: int = 32  # per query
    exclusive: float = 0.5  # drop a segment this much of whose query span a stronger one covers


def copied_spans(
    query: np.ndarray,
    index: LandmarkIndex,
    rule: SpanRule = SpanRule(),
    settings: LandmarkConfig | None = None,
) -> list[Segment]:
    """Segments (seconds; `source` a row of the index) of `query`'s landmarks `[N, 2]`, best
    first."""
    videos, offsets, frames = index.hits(query)
    step = (settings or LandmarkConfig()).frame_seconds
    free = np.ones(len(videos), bool)
    segments: list[Segment] = []
    for _ in range(rule.max_alignments):
        video, offset, near = _strongest_alignment(videos[free], offsets[free], rule.tolerance)
        if near < rule.min_hits:
            break
        claimed = free & (videos == video) & (np.abs(offsets - offset) <= rule.tolerance)
        free &= ~claimed
        for run in _runs(np.sort(frames[claimed]), rule.max_gap_s / step):
            start, end = run[0] * step, run[-1] * step + rule.tail_s
            if len(run) >= rule.min_hits and end - start >= rule.min_seconds:
                score = float(landmark_score(len(run), FUSION_HALF_COUNT))
                shift = offset * step
                segments.append(Segment(start, end, int(video), start + shift, end + shift, score))
    return _exclusive(sorted(segments, key=lambda s: -s.score), rule.exclusive)


def _exclusive(segments: list[Segment], share: float) -> list[Segment]:
    """Segments (best first) without those whose query span is covered by more than `share`
    by stronger segments of other sources."""
    kept: list[Segment] = []
    for s in segments:
        covered = sum(
            max(0.0, min(s.query_end, k.query_end) - max(s.query_start, k.query_start))
            for k in kept
            if k.source != s.source
        )
        if covered <= share * (s.query_end - s.query_start):
            kept.append(s)
    return kept


def _strongest_alignment(
    videos: np.ndarray, offsets: np.ndarray, tolerance: int
) -> tuple[int, int, int]:
    """`(video, offset, hits within ±tolerance of it)` of the best-supported offset."""
    owner, offset, window = offset_windows(videos, offsets, tolerance)
    if not len(window):
        return -1, 0, 0
    best = int(np.argmax(window))
    return int(owner[best]), int(offset[best]), int(window[best])


def _runs(frames: np.ndarray, max_gap: float) -> list[np.ndarray]:
    """Sorted frames split wherever consecutive ones are more than `max_gap` apart."""
    if not len(frames):
        return []
    return np.split(frames, np.flatnonzero(np.diff(frames) > max_gap) + 1)
