"""Segment metrics of copy localisation: VCSL's per-pair metric, VSC's segment AP, and
video-level detection (which sources were found).

A box is any sequence starting `(q_start, q_end, r_start, r_end, ...)` (half-open spans, frames or
seconds). For one query–reference pair, the overlap intervals are the projections on each axis of
the 2-D intersections of every predicted box with every ground-truth box; along an axis, the
overlap, predicted and ground-truth lengths are lengths of unions of intervals.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

BoxLike = Sequence[float]
Pair = Hashable  # e.g. (query_id, reference_id)


def union_length(intervals: Sequence[tuple[float, float]]) -> float:
    """Total length covered by half-open intervals (overlaps counted once)."""
    total, end = 0.0, -np.inf
    for start, stop in sorted(intervals):
        if stop <= end:
            continue
        total += stop - max(start, end)
        end = stop
    return total


class PairLengths(NamedTuple):
    """Per-axis lengths of one pair: overlap, predicted and ground truth (query, reference)."""

    overlap_q: float
    overlap_r: float
    pred_q: float
    pred_r: float
    gt_q: float
    gt_r: float


def pair_lengths(pred: Sequence[BoxLike], gt: Sequence[BoxLike]) -> PairLengths:
    """Overlap and total lengths of one pair's predicted and ground-truth boxes."""
    over_q, over_r = [], []
    for p in pred:
        for g in gt:
            q = (max(p[0], g[0]), min(p[1], g[1]))
            r = (max(p[2], g[2]), min(p[3], g[3]))
            if q[1] > q[0] and r[1] > r[0]:
                over_q.append(q)
                over_r.append(r)
    return PairLengths(
        union_length(over_q),
        union_length(over_r),
        union_length([(p[0], p[1]) for p in pred]),
        union_length([(p[2], p[3]) for p in pred]),
        union_length([(g[0], g[1]) for g in gt]),
        union_length([(g[2], g[3]) for g in gt]),
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def pair_precision_recall(pred: Sequence[BoxLike], gt: Sequence[BoxLike]) -> tuple[float, float]:
    """VCSL's pair metric: precision = P_query · P_reference, recall = R_query · R_reference."""
    n = pair_lengths(pred, gt)
    precision = _ratio(n.overlap_q, n.pred_q) * _ratio(n.overlap_r, n.pred_r)
    recall = _ratio(n.overlap_q, n.gt_q) * _ratio(n.overlap_r, n.gt_r)
    return precision, recall


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def vcsl_segment_metric(
    pred: Mapping[Pair, Sequence[BoxLike]],
    gt: Mapping[Pair, Sequence[BoxLike]],
    num_negative_pairs: int,
) -> dict[str, float]:
    """VCSL's segment precision, recall and F1, averaged over pairs (each pair weighs the same),
    and its false rejection / false alarm rates.

    Precision is the mean over pairs with predictions (a pair without ground truth scores 0),
    recall the mean over pairs with ground truth (a pair without predictions scores 0).
    FRR = share of ground-truth pairs with no prediction; FAR = predicted pairs without ground
    truth ÷ `num_negative_pairs` (pairs without ground truth that were searched).
    """
    pred = {k: v for k, v in pred.items() if len(v)}
    gt = {k: v for k, v in gt.items() if len(v)}
    scores = {k: pair_precision_recall(pred.get(k, ()), gt.get(k, ())) for k in {*pred, *gt}}
    precision = float(np.mean([scores[k][0] for k in pred])) if pred else 0.0
    recall = float(np.mean([scores[k][1] for k in gt])) if gt else 0.0
    missed = sum(k not in pred for k in gt)
    false_alarms = sum(k not in gt for k in pred)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _f1(precision, recall),
        "frr": _ratio(missed, len(gt)),
        "far": _ratio(false_alarms, num_negative_pairs),
        "pairs_gt": len(gt),
        "pairs_predicted": len(pred),
    }


class Match(NamedTuple):
    """One localised copy: VSC's matching-track row."""

    query_id: str
    ref_id: str
    query_start: float
    query_end: float
    ref_start: float
    ref_end: float
    score: float


def _totals(lengths: Mapping[Pair, PairLengths], gt_totals: tuple[float, float]):
    """Micro-averaged (P, R) with P = √(Pq·Pr), R = √(Rq·Rr) over every pair."""
    s = np.sum([tuple(v) for v in lengths.values()], axis=0) if lengths else np.zeros(6)
    precision = np.sqrt(_ratio(s[0], s[2]) * _ratio(s[1], s[3]))
    recall = np.sqrt(_ratio(s[0], gt_totals[0]) * _ratio(s[1], gt_totals[1]))
    return float(precision), float(recall)


def vsc_segment_ap(predictions: Sequence[Match], gt: Sequence[Match]) -> dict[str, float]:
    """VSC2022 matching-track segment AP: predictions by decreasing score; after each distinct
    score, micro-averaged precision and recall over all pairs; AP = Σ ΔR · P."""
    gt_boxes: dict[Pair, list[BoxLike]] = {}
    for m in gt:
        gt_boxes.setdefault((m.query_id, m.ref_id), []).append(m[2:6])
    gt_totals = (
        sum(union_length([(b[0], b[1]) for b in boxes]) for boxes in gt_boxes.values()),
        sum(union_length([(b[2], b[3]) for b in boxes]) for boxes in gt_boxes.values()),
    )
    order = sorted(predictions, key=lambda m: -m.score)
    kept: dict[Pair, list[BoxLike]] = {}
    lengths: dict[Pair, PairLengths] = {}
    ap, last_recall, curve = 0.0, 0.0, []
    for i, m in enumerate(order):
        pair = (m.query_id, m.ref_id)
        kept.setdefault(pair, []).append(m[2:6])
        lengths[pair] = pair_lengths(kept[pair], gt_boxes.get(pair, ()))
        if i + 1 < len(order) and order[i + 1].score == m.score:
            continue
        precision, recall = _totals(lengths, gt_totals)
        ap += (recall - last_recall) * precision
        last_recall = recall
        curve.append((precision, recall))
    precision, recall = curve[-1] if curve else (0.0, 0.0)
    return {"ap": ap, "precision": precision, "recall": recall, "f1": _f1(precision, recall)}


def source_detection(
    predicted: Mapping[str, Sequence[str]], annotated: Mapping[str, Sequence[str]]
) -> dict[str, float]:
    """Video-level detection: per query the sources it was found to copy vs the annotated ones;
    counts, micro precision/recall over (query, source) pairs, and queries with every source."""
    queries = {*predicted, *annotated}
    found = {q: set(predicted.get(q, ())) & set(annotated.get(q, ())) for q in queries}
    n_found = sum(len(v) for v in found.values())
    n_annotated = sum(len(set(v)) for v in annotated.values())
    n_predicted = sum(len(set(v)) for v in predicted.values())
    complete = sum(found[q] == set(v) for q, v in annotated.items() if v)
    return {
        "sources_found": n_found,
        "sources_annotated": n_annotated,
        "sources_predicted": n_predicted,
        "precision": _ratio(n_found, n_predicted),
        "recall": _ratio(n_found, n_annotated),
        "queries_complete": complete,
        "queries_annotated": sum(bool(v) for v in annotated.values()),
    }
