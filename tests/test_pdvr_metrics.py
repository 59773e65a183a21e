"""Segment metrics on hand-built cases whose answers are worked out in the comments."""

import pytest

from ndvr_jax.pdvr.metrics import (
    Match,
    pair_precision_recall,
    source_detection,
    union_length,
    vcsl_segment_metric,
    vsc_segment_ap,
)


def test_union_length():
    assert union_length([(5, 6), (0, 2), (1, 3)]) == 4  # [0, 3) + [5, 6)
    assert union_length([(0, 10), (2, 3)]) == 10
    assert union_length([]) == 0


def test_pair_precision_recall_products_over_axes():
    # Overlap 5 frames of 10 on the query axis, 8 of 10 on the reference axis.
    assert pair_precision_recall([(5, 15, 2, 12)], [(0, 10, 0, 10)]) == pytest.approx((0.4, 0.4))
    # One of two ground-truth boxes found exactly: P = 1, R = (4 / 14)².
    p, r = pair_precision_recall([(0, 4, 10, 14)], [(0, 4, 10, 14), (10, 20, 30, 40)])
    assert (p, r) == pytest.approx((1.0, (4 / 14) ** 2))
    # A prediction that meets a ground-truth box on one axis only does not overlap it.
    assert pair_precision_recall([(0, 10, 20, 30)], [(0, 10, 0, 10)]) == (0.0, 0.0)


def test_vcsl_metric_averages_over_pairs():
    gt = {
        "A": [(0, 10, 0, 10)],
        "B": [(0, 4, 10, 14), (10, 20, 30, 40)],
        "C": [(0, 5, 0, 5)],
    }
    pred = {"A": [(5, 15, 2, 12)], "B": [(0, 4, 10, 14)], "D": [(0, 5, 0, 5)], "E": []}
    out = vcsl_segment_metric(pred, gt, num_negative_pairs=10)
    precision = (0.4 + 1.0 + 0.0) / 3  # pairs with predictions: A, B, D
    recall = (0.4 + (4 / 14) ** 2 + 0.0) / 3  # pairs with ground truth: A, B, C
    assert out["precision"] == pytest.approx(precision)
    assert out["recall"] == pytest.approx(recall)
    assert out["f1"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert out["frr"] == pytest.approx(1 / 3)  # C missed
    assert out["far"] == pytest.approx(1 / 10)  # D is a false alarm
    assert (out["pairs_gt"], out["pairs_predicted"]) == (3, 3)


def test_vsc_segment_ap():
    gt = [Match("q1", "r1", 0, 10, 0, 10, 1), Match("q2", "r2", 0, 10, 0, 10, 1)]
    pred = [
        Match("q2", "r2", 0, 5, 0, 10, 0.7),
        Match("q1", "r1", 0, 10, 0, 10, 0.9),
        Match("q3", "r3", 0, 5, 0, 5, 0.8),
    ]
    # After 0.9: P = 1, R = √(10/20 · 10/20) = 0.5.            AP += 0.5 · 1
    # After 0.8: P = √(10/15 · 10/15), R unchanged.              AP += 0
    # After 0.7: P = √(15/20 · 20/25), R = √(15/20 · 20/20).     AP += (R − 0.5) · P
    p3, r3 = (0.75 * 0.8) ** 0.5, 0.75**0.5
    out = vsc_segment_ap(pred, gt)
    assert out["ap"] == pytest.approx(0.5 + (r3 - 0.5) * p3)
    assert (out["precision"], out["recall"]) == pytest.approx((p3, r3))
    assert vsc_segment_ap([], gt)["ap"] == 0.0
    perfect = vsc_segment_ap([m._replace(score=0.5) for m in gt], gt)
    assert perfect["ap"] == pytest.approx(1.0) and perfect["f1"] == pytest.approx(1.0)


def test_source_detection():
    out = source_detection(
        {"q1": ["a", "b"], "q2": ["c"]}, {"q1": ["a"], "q2": ["c", "d"], "q3": []}
    )
    assert out["sources_found"] == 2 and out["sources_annotated"] == 3
    assert out["precision"] == pytest.approx(2 / 3) and out["recall"] == pytest.approx(2 / 3)
    assert (out["queries_complete"], out["queries_annotated"]) == (1, 2)
