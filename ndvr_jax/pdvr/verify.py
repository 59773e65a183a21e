"""The "no copy" decision: a localised segment is kept only if its query frames copy its source
span with a calibrated probability of at least `threshold`.

The evidence is the collection search's: the frame Chamfer similarity (each query frame's best
cosine over the source span's frames, averaged; features as extracted, not centred) of the
segment's two spans, through the collection's visual calibration (`ndvr_jax.collection.fusion`,
fitted on annotated pairs; the shipped one by default). Aligners find *where* two videos are most
alike; this says whether that is alike enough to be a copy, so a query whose pictures no database
video shows gets no segment however its similarity map looks.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence

import numpy as np

from ndvr_jax.collection.fusion import DEFAULT_CALIBRATION, Calibration, load_calibrations
from ndvr_jax.pdvr.segments import Segment


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def span_chamfer(query: np.ndarray, source: np.ndarray, segment: Segment) -> float:
    """Chamfer similarity of the segment's query frames to its source frames (frame units,
    `[start, end)`; at least one frame each)."""

    def frames(x: np.ndarray, start: float, end: float) -> np.ndarray:
        lo = min(max(int(math.floor(start)), 0), len(x) - 1)
        return x[lo : max(int(math.ceil(end)), lo + 1)]

    q = _unit(frames(query, segment.query_start, segment.query_end))
    r = _unit(frames(source, segment.source_start, segment.source_end))
    return float((q @ r.T).max(axis=1).mean())


@dataclasses.dataclass(frozen=True)
class Verifier:
    """Keeps the segments whose calibrated copy probability reaches `threshold`."""

    calibration: Calibration
    threshold: float = 0.5

    @classmethod
    def from_config(cls, calibration: str | os.PathLike, threshold: float) -> Verifier | None:
        """`calibration`: "" (no verification: None), "shipped" or a calibration JSON."""
        if not calibration:
            return None
        path = DEFAULT_CALIBRATION if calibration == "shipped" else calibration
        return cls(load_calibrations(path)["visual"], threshold)

    def keep(
        self, segments: Sequence[Segment], query: np.ndarray, database: Sequence[np.ndarray]
    ) -> list[Segment]:
        """The segments (frame units, `source` a database index) that pass."""
        if not segments:
            return []
        evidence = np.array([span_chamfer(query, database[s.source], s) for s in segments])
        passed = self.calibration(evidence) >= self.threshold
        return [s for s, ok in zip(segments, passed, strict=True) if ok]
