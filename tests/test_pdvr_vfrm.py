"""The VFRM scan against a plain Python loop, speed changes, no-copy queries, devices, fitting."""

import jax
import numpy as np
import pytest

from ndvr_jax import sharding
from ndvr_jax.pdvr.segments import MergeRule, Segment, merge_segments, to_seconds
from ndvr_jax.pdvr.vfrm import (
    MISSING,
    cut_from_features,
    default_params,
    fit_vfrm,
    params_to_dict,
    run_vfrm,
    vfrm_reference,
)

# Hand-made maps have sharp copy boundaries: a quick memory (rate 0.3) and a higher threshold
# find them to the frame (the demo defaults trade that for steadier positions on real features).
SHARP = dict(bias=-6.0, memory_rate=0.3)


def _random_batch(seed=0, b=3, t=12, c=4, r=9):
    rng = np.random.default_rng(seed)
    sims = rng.uniform(-0.3, 1.0, (b, t, c, r)).astype(np.float32)
    ref_mask = rng.random((b, c, r)) < 0.8
    ref_mask[0, 1] = False  # a missing candidate
    cut = rng.random((b, t)).astype(np.float32)
    return sims, ref_mask, cut


def _copy_query(t=30, r=40, c=3, source=1, q0=5, r0=7, length=18, speed=1.0, seed=0):
    """Similarities [1, T, C, R] of a query copying `length` frames of one candidate."""
    rng = np.random.default_rng(seed)
    sims = rng.uniform(-0.1, 0.25, (1, t, c, r)).astype(np.float32)
    for i in range(length):
        sims[0, q0 + i, source, r0 + int(i * speed)] = 0.85
    return sims, np.ones((1, c, r), bool), np.zeros((1, t), np.float32)


def test_scan_equals_python_loop():
    sims, ref_mask, cut = _random_batch()
    params = default_params(w_frame=3.0, w_continuity=2.0, w_video=1.5, bias=-1.0)
    score, position = run_vfrm(params, sims, ref_mask, cut)
    want_score, want_position = vfrm_reference(params, sims, ref_mask, cut)
    real = want_score > MISSING / 2
    np.testing.assert_allclose(score[real], want_score[real], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(position[real], want_position[real])
    assert np.all(score[0, :, 1] == MISSING) and not real[0, :, 1].any()


@pytest.mark.parametrize("speed", [0.5, 1.0, 1.5, 2.0])
def test_speed_changed_copy_is_one_segment(speed):
    length = 16
    sims, ref_mask, cut = _copy_query(speed=speed, length=length)
    score, position = run_vfrm(default_params(**SHARP), sims, ref_mask, cut)
    (segment,) = merge_segments(score[0], position[0])
    r_end = 7 + int((length - 1) * speed) + 1
    assert segment[:5] == (5, 5 + length, 1, 7, r_end)


def test_continuity_bridges_weak_frames():
    sims, ref_mask, cut = _copy_query()
    sims[0, 12:14, 1, 14:16] = 0.45  # two weakly similar frames in the middle of the copy
    score, position = run_vfrm(default_params(**SHARP), sims, ref_mask, cut)
    assert len(merge_segments(score[0], position[0], MergeRule(max_gap=0))) == 1
    no_memory = default_params(w_continuity=0.0, w_video=0.0, **SHARP)
    score, position = run_vfrm(no_memory, sims, ref_mask, cut)
    assert len(merge_segments(score[0], position[0], MergeRule(max_gap=0))) == 2


def test_cut_releases_memory():
    sims, ref_mask, cut = _copy_query()
    sims[0, 23:26, 1] = 0.45  # after the copy: weak frames that memory alone would carry on
    params = default_params(w_continuity=8.0, **SHARP)
    score, _ = run_vfrm(params, sims, ref_mask, cut)
    cut[0, 23] = 1.0
    released, _ = run_vfrm(params, sims, ref_mask, cut)
    assert score[0, 23, 1] > 0 > released[0, 23, 1]


def test_no_copy_query_gives_no_segment():
    rng = np.random.default_rng(1)
    sims = rng.uniform(-0.2, 0.3, (2, 40, 5, 30)).astype(np.float32)
    score, position = run_vfrm(default_params(), sims, np.ones((2, 5, 30), bool), np.zeros((2, 40)))
    assert all(merge_segments(s, p) == [] for s, p in zip(score, position, strict=True))


def test_two_sources_with_a_cut():
    sims, ref_mask, cut = _copy_query(length=10)
    sims[0, 16:28, 2, 20:32] = np.where(np.eye(12, dtype=bool), 0.9, sims[0, 16:28, 2, 20:32])
    cut[0, 16] = 1.0
    score, position = run_vfrm(default_params(**SHARP), sims, ref_mask, cut)
    segments = merge_segments(score[0], position[0])
    assert [s[:5] for s in segments] == [(5, 15, 1, 7, 17), (16, 28, 2, 20, 32)]


def test_one_and_eight_devices_agree():
    assert jax.device_count() == 8
    sims, ref_mask, cut = _random_batch(seed=2, b=5)
    params = default_params()
    one = run_vfrm(params, sims, ref_mask, cut, mesh=sharding.make_mesh(1))
    eight = run_vfrm(params, sims, ref_mask, cut, mesh=sharding.make_mesh(8))
    np.testing.assert_allclose(one[0], eight[0], rtol=1e-6)
    np.testing.assert_array_equal(one[1], eight[1])


def test_fit_lowers_the_loss_and_separates_copies():
    sims, ref_mask, cut = _copy_query(t=24, r=30, length=12, speed=1.5)
    labels = np.zeros((1, 24, 3), np.float32)
    labels[0, 5:17, 1] = 1.0
    start = default_params(w_frame=1.0, w_continuity=0.0, w_video=0.0, bias=0.0)
    params, losses = fit_vfrm(start, sims, ref_mask, cut, labels, np.ones_like(labels), steps=300)
    assert losses[-1] < 0.5 * losses[0]
    score, _ = run_vfrm(params, sims, ref_mask, cut)
    assert np.all((score > 0) == (labels > 0))
    assert set(params_to_dict(params)) == set(params._fields)


def test_merge_rules():
    score = np.full((12, 2), -5.0)
    position = np.zeros((12, 2), np.int64)
    score[0:4, 0], position[0:4, 0] = 5.0, [3, 4, 5, 6]
    score[5:8, 0], position[5:8, 0] = 5.0, [8, 9, 10]  # one-frame gap, consistent: joins
    score[8:11, 1], position[8:11, 1] = 3.0, [0, 1, 2]  # another source
    segments = merge_segments(score, position, MergeRule(max_gap=1, min_frames=3))
    assert [s[:5] for s in segments] == [(0, 8, 0, 3, 11), (8, 11, 1, 0, 3)]
    position[5:8, 0] = [30, 31, 32]  # a jump inside the source: a new segment
    segments = merge_segments(score, position, MergeRule(max_gap=1, min_frames=3))
    assert [s[:5] for s in segments] == [(0, 4, 0, 3, 7), (5, 8, 0, 30, 33), (8, 11, 1, 0, 3)]
    assert merge_segments(score, position, MergeRule(min_frames=4))[0][:2] == (0, 4)


def test_to_seconds():
    segment = Segment(2, 5, 0, 10, 13, 0.9)
    times = np.arange(20) / 4.0
    out = to_seconds(segment, times, np.arange(20) / 2.0, "db7")
    assert out == Segment(0.5, 1.25, "db7", 5.0, 6.5, 0.9)


def test_cut_from_features():
    x = np.zeros((6, 4))
    x[:3, 0] = 1.0
    x[3:, 1] = 1.0
    cut = cut_from_features(x)
    assert cut[0] == 1.0 and cut[3] > 0.99 and np.all(cut[[1, 2, 4, 5]] < 0.01)


def test_overlapping_sources_exclusive_or_not():
    score = np.full((6, 2), -5.0)
    score[:, 0], score[:, 1] = 4.0, 2.0  # both candidates hold the copied frames
    position = np.tile(np.arange(6)[:, None], (1, 2))
    both = merge_segments(score, position, MergeRule(min_frames=3))
    assert [s[:3] for s in both] == [(0, 6, 0), (0, 6, 1)]
    only_best = merge_segments(score, position, MergeRule(min_frames=3, exclusive=True))
    assert [s[:3] for s in only_best] == [(0, 6, 0)]


def test_scan_with_retained_memories_equals_python_loop():
    sims, ref_mask, cut = _random_batch(seed=3)
    params = default_params(bias=-1.0, memory_retain=0.4, belief_retain=0.8)
    score, position = run_vfrm(params, sims, ref_mask, cut)
    want_score, want_position = vfrm_reference(params, sims, ref_mask, cut)
    real = want_score > MISSING / 2
    np.testing.assert_allclose(score[real], want_score[real], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(position[real], want_position[real])
    released, _ = run_vfrm(default_params(bias=-1.0), sims, ref_mask, cut)
    assert not np.allclose(score[real], released[real])  # the retained shares change the logits


def test_fitted_source_span_keeps_a_stalled_copy_long():
    score = np.full((10, 1), 5.0)
    position = np.full((10, 1), 4)  # a still shot: every frame aligned to position 4
    (extent,) = merge_segments(score, position, MergeRule(min_frames=3))
    (fit,) = merge_segments(score, position, MergeRule(min_frames=3, source_span="fit"), [20])
    assert extent[3:5] == (4, 5) and fit[:2] == extent[:2] == (0, 10)
    # slope 0 clipped to 0.5: 5 source frames around the median offset 4 − 0.5 · 4.5 = 1.75
    assert fit[3:5] == (2, 7)
    diagonal = np.arange(10)[:, None] + 10
    (bounded,) = merge_segments(score, diagonal, MergeRule(min_frames=3, source_span="fit"), [14])
    assert bounded[3:5] == (10, 14)  # the fitted end stops at the source's last frame
