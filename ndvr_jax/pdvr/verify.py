"""The "no copy" decision: a localised segment is kept only if the calibrated probability that its
query span copies its source span reaches `threshold`.

Kept segments' scores are multiplied by that probability. Aligners find *where* a query and a
candidate are most alike; whether that is alike enough to be a copy depends on the media (on
real footage unrelated pictures score high frame cosines). The evidence is therefore relative:
the span's frame Chamfer similarity (each query frame of the span against the source span's
frames, best cosine, averaged; features as extracted) minus the mean of the `background` highest
Chamfer similarities of the same query frames to the query's *other* candidates (whole videos).
A copy stands out from the other candidates; a look-alike does not. With `inset_views`, regional
query frames (`[T, R, D]`: the whole frame, then its regions, e.g. the detected picture-in-picture
inset) also give the contrast of each region alone against whole reference frames, and the
segment's evidence is the largest: a source shown small inside the query stands out in its inset
even where the query's whole frame resembles other videos as much.
The candidates are the ones the candidate stage voted for, so the cost grows with them, not with
the database. A logistic calibration of that contrast (`ndvr_jax.collection.fusion.Calibration`)
gives the probability: fitted on annotated segments (`fit_segment_calibration`, `python -m
ndvr_jax.localize ... --config.verify.fit_to=FILE`), shipped fitted on the dev set
(`segment_calibration.json`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ndvr_jax.collection.fusion import Calibration, fit_calibration
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.pdvr.frames import similarity_map, whole_frames
from ndvr_jax.pdvr.segments import Segment

DEFAULT_SEGMENT_CALIBRATION = Path(__file__).with_name("segment_calibration.json")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _span(x: np.ndarray, start: float, end: float) -> np.ndarray:
    """Frames [start, end) (frame units, at least one frame, clipped to the video)."""
    lo = min(max(int(math.floor(start)), 0), len(x) - 1)
    return x[lo : max(int(math.ceil(end)), lo + 1)]


def chamfer(query: np.ndarray, reference: np.ndarray) -> float:
    """Each query frame's best similarity over the reference frames, averaged (whole-frame or
    regional frames, `ndvr_jax.pdvr.frames.similarity_map`, in plain numpy: spans are a few dozen
    frames of every length, where `ndvr_jax.chamfer`'s compiled blocks would recompile per
    shape)."""
    return float(similarity_map(_unit(query), _unit(reference)).max(axis=1).mean())


def _background(frames: np.ndarray, others: Sequence[np.ndarray], background: int) -> float:
    """The mean of the `background` best Chamfer similarities of `frames` to `others` (none: 0)."""
    rest = sorted((chamfer(frames, o) for o in others if len(o)), reverse=True)[:background]
    return float(np.mean(rest)) if rest else 0.0


def copies_of(
    span: np.ndarray, others: Sequence[np.ndarray], background: int, cutoff: float
) -> list[bool]:
    """Which of `others` copy `span` themselves: their Chamfer similarity to it minus the
    background of the rest passes `cutoff` (the decision's own threshold, applied to a source)."""
    sims = [chamfer(span, o) if len(o) else -1.0 for o in others]
    flags = []
    for i, s in enumerate(sims):
        rest = sorted((r for j, r in enumerate(sims) if j != i and r > -1.0), reverse=True)
        flags.append(s - (float(np.mean(rest[:background])) if rest else 0.0) >= cutoff)
    return flags


def contrast(
    query: np.ndarray,
    segment: Segment,
    source: np.ndarray,
    others: Sequence[np.ndarray],
    background: int = 5,
    duplicate_cutoff: float | None = None,
    inset_views: bool = False,
) -> float:
    """The segment's span Chamfer minus the mean of the `background` best Chamfer similarities
    of its query frames to `others` (whole videos; none: minus 0).

    With `duplicate_cutoff`, others that copy the source span themselves (`copies_of`) are left
    out of the background: a query that copies a source resembles the source's own duplicates in
    the database just as much, which is no evidence against the copy. With `inset_views` (and
    regional frames), the largest of that and each query region's own contrast against the whole
    frames of the source span and of `others`."""
    frames = _span(query, segment.query_start, segment.query_end)
    span = _span(source, segment.source_start, segment.source_end)
    if duplicate_cutoff is not None:
        flags = copies_of(span, others, background, duplicate_cutoff)
        others = [o for o, duplicate in zip(others, flags, strict=True) if not duplicate]
    evidence = chamfer(frames, span) - _background(frames, others, background)
    if not inset_views or frames.ndim != 3:
        return evidence
    whole = [whole_frames(o) for o in others]
    for region in range(1, frames.shape[1]):
        view = frames[:, region]
        own = chamfer(view, whole_frames(span)) - _background(view, whole, background)
        evidence = max(evidence, own)
    return evidence


def segment_evidence(
    segments: Sequence[Segment],
    query: np.ndarray,
    database: Sequence[np.ndarray],
    candidates: Sequence[int],
    background: int = 5,
    duplicate_cutoff: float | None = None,
    inset_views: bool = False,
) -> np.ndarray:
    """`contrast` of every segment (frame units, `source` a database index) against the query's
    other candidates (database indices)."""
    return np.array(
        [
            contrast(
                query,
                s,
                database[s.source],
                [database[i] for i in candidates if i != s.source],
                background,
                duplicate_cutoff,
                inset_views,
            )
            for s in segments
        ],
        np.float32,
    )


@dataclasses.dataclass(frozen=True)
class Verifier:
    """Keeps the segments whose calibrated copy probability reaches `threshold`."""

    calibration: Calibration
    threshold: float = 0.5
    background: int = 5
    duplicates: bool = False  # leave the source's own copies out of the background
    inset_views: bool = False  # regional frames: each query region's own contrast counts too

    @property
    def duplicate_cutoff(self) -> float | None:
        """The contrast at which a database video counts as a copy of a source span (None: the
        background keeps every other candidate)."""
        return self.calibration.threshold(self.threshold) if self.duplicates else None

    @classmethod
    def from_config(cls, verify: Mapping) -> Verifier | None:
        """`verify.calibration`: "" (no verification: None), "shipped" or a calibration JSON
        (`fit_segment_calibration`'s); `threshold`, `duplicates` and `inset_views` as the fields,
        `background` from the calibration."""
        if not verify.get("calibration"):
            return None
        path = verify["calibration"]
        path = DEFAULT_SEGMENT_CALIBRATION if path == "shipped" else Path(path)
        data = json.loads(path.read_text())
        return cls(
            Calibration(data["slope"], data["intercept"]),
            verify.get("threshold", 0.5),
            data.get("background", 5),
            verify.get("duplicates", False),
            verify.get("inset_views", False),
        )

    def keep(
        self,
        segments: Sequence[Segment],
        query: np.ndarray,
        database: Sequence[np.ndarray],
        candidates: Sequence[int],
    ) -> list[Segment]:
        """The segments that pass, their scores multiplied by their copy probability (rankings such
        as VSC's segment AP then weigh the calibrated evidence too)."""
        if not segments:
            return []
        evidence = segment_evidence(
            segments,
            query,
            database,
            candidates,
            self.background,
            self.duplicate_cutoff,
            self.inset_views,
        )
        p = self.calibration(evidence)
        return [
            s._replace(score=float(q) * s.score)
            for s, q in zip(segments, p, strict=True)
            if q >= self.threshold
        ]


def overlaps_truth(segment: Segment, truth: Sequence[Segment]) -> bool:
    """Whether a segment (seconds) shares query time with an annotated segment of its source."""
    return any(
        t.source == segment.source
        and min(t.query_end, segment.query_end) > max(t.query_start, segment.query_start)
        for t in truth
    )


def fit_segment_calibration(
    evidence: np.ndarray, labels: np.ndarray, path: str | os.PathLike, background: int, **meta
) -> Calibration:
    """Fits the contrast's calibration on labelled segments and saves it as JSON."""
    calibration = fit_calibration(evidence, labels)
    save_json_atomic(
        path,
        {**meta, **dataclasses.asdict(calibration), "background": background,
         "segments": int(len(labels)), "copies": int(np.sum(labels))},
    )  # fmt: skip
    return calibration
