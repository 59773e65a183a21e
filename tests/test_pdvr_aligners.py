"""TN, DP and the VFRM aligner on small hand-made similarity maps with known answers."""

import numpy as np
import pytest

from ndvr_jax.pdvr.aligners import make_aligner
from ndvr_jax.pdvr.boxes import Box, accepts, box_iou
from ndvr_jax.pdvr.dp import DynamicProgramming
from ndvr_jax.pdvr.tn import TemporalNetwork
from ndvr_jax.pdvr.vfrm import default_params

# Sharp-boundary VFRM parameters for hand-made maps (see tests/test_pdvr_vfrm.py).
OPTIONS = {"tn": {}, "dp": {}, "vfrm": {"params": default_params(bias=-6.0, memory_rate=0.3)}}


def _map(shape=(40, 50), seed=0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.1, 0.2, shape)


def _diagonal(sim, q0, r0, length, value=0.9, speed=1.0):
    for i in range(length):
        sim[q0 + i, r0 + int(i * speed)] = value
    return sim


def test_box_iou_and_filter():
    a, b = Box(0, 10, 0, 10, 1.0), Box(5, 15, 0, 10, 1.0)
    assert box_iou(a, b) == pytest.approx(50 / 150)
    assert box_iou(a, Box(20, 30, 20, 30, 1.0)) == 0.0
    assert accepts(a, [], min_length=10, max_iou=0.3)
    assert not accepts(a, [], min_length=11, max_iou=0.3)
    assert not accepts(b, [a], min_length=5, max_iou=0.3)


@pytest.mark.parametrize("name", ["tn", "dp", "vfrm"])
def test_one_diagonal(name):
    sim = _diagonal(_map(), 8, 18, 12)
    boxes = make_aligner(name, **OPTIONS[name]).align(sim)
    assert len(boxes) == 1
    assert boxes[0][:4] == (8, 20, 18, 30)
    if name != "vfrm":
        assert boxes[0].score == pytest.approx(0.9)


@pytest.mark.parametrize("name", ["tn", "dp", "vfrm"])
def test_two_copies_in_order_of_query(name):
    sim = _diagonal(_diagonal(_map(), 2, 30, 10), 22, 3, 12)
    boxes = sorted(make_aligner(name, **OPTIONS[name]).align(sim))
    assert [b[:4] for b in boxes] == [(2, 12, 30, 40), (22, 34, 3, 15)]


@pytest.mark.parametrize("name", ["tn", "dp", "vfrm"])
def test_nothing_on_noise(name):
    assert make_aligner(name, **OPTIONS[name]).align(_map(seed=3)) == []


def test_tn_min_length_and_steps():
    short = _diagonal(_map(), 5, 5, 4)  # 4 frames < min_length 5
    assert TemporalNetwork().align(short) == []
    # A gap of 9 frames on both axes is still one edge (< max_step 10); 10 is not.
    sim = _map()
    for q, r in [(0, 0), (1, 1), (2, 2), (11, 11), (12, 12), (13, 13)]:
        sim[q, r] = 0.9
    assert [b[:4] for b in TemporalNetwork().align(sim)] == [(0, 14, 0, 14)]
    sim[11:14] = _map()[11:14]
    for q, r in [(12, 12), (13, 13), (14, 14)]:
        sim[q, r] = 0.9
    boxes = TemporalNetwork(min_length=3).align(sim)
    assert sorted(b[:4] for b in boxes) == [(0, 3, 0, 3), (12, 15, 12, 15)]


def test_tn_score_is_mean_of_path():
    sim = _map()
    values = [0.5, 0.7, 0.9, 0.7, 0.5, 0.6]
    for i, v in enumerate(values):
        sim[10 + i, 20 + i] = v
    (box,) = TemporalNetwork().align(sim)
    assert box == Box(10, 16, 20, 26, pytest.approx(np.mean(values)))


def test_dp_follows_half_speed_and_crosses_short_dips():
    sim = _diagonal(_map(), 5, 10, 16, value=0.8, speed=0.5)  # reference frames 10..17
    sim[12, 13] = 0.0  # one low cell on the path: within `discontinue`
    (box,) = DynamicProgramming().align(sim)
    assert box[:4] == (5, 21, 10, 18)


def test_dp_breaks_after_discontinue_low_cells():
    sim = np.full((30, 30), -1.0)  # background cells gain S + 1 = 0: ties go to the diagonal
    sim[np.arange(0, 8), np.arange(0, 8)] = 0.9
    sim[np.arange(13, 21), np.arange(13, 21)] = 0.9  # 5 low cells between the runs
    assert len(DynamicProgramming(discontinue=3).align(sim)) == 2
    assert [b[:4] for b in DynamicProgramming(discontinue=6).align(sim)] == [(0, 21, 0, 21)]


def test_unknown_aligner():
    with pytest.raises(ValueError, match="unknown aligner"):
        make_aligner("hv")
