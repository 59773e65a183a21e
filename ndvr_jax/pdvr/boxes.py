"""The box every aligner returns: a copied span in query × reference frame units, and IoU."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple


class Box(NamedTuple):
    """Query frames [q_start, q_end) copy reference frames [r_start, r_end) (half-open)."""

    q_start: float
    q_end: float
    r_start: float
    r_end: float
    score: float


def _overlap(a0: float, a1: float, b0: float, b1: float) -> float:
    return max(0.0, min(a1, b1) - max(a0, b0))


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes as rectangles of the similarity map."""
    inter = _overlap(a.q_start, a.q_end, b.q_start, b.q_end) * _overlap(
        a.r_start, a.r_end, b.r_start, b.r_end
    )
    area = lambda x: (x.q_end - x.q_start) * (x.r_end - x.r_start)
    union = area(a) + area(b) - inter
    return inter / union if union > 0 else 0.0


def accepts(box: Box, kept: Sequence[Box], min_length: int, max_iou: float) -> bool:
    """VCSL's filter: both sides at least `min_length` frames, IoU with every kept box ≤ max_iou."""
    long_enough = min(box.q_end - box.q_start, box.r_end - box.r_start) >= min_length
    return long_enough and all(box_iou(box, other) <= max_iou for other in kept)
