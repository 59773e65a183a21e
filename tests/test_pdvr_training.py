"""Transition DNN: the model, the stitched training data, and `run_training` through the loop."""

import json
import os

import numpy as np
from flax import nnx

from ndvr_jax.config_files import load_config_file
from ndvr_jax.pdvr.model import (
    TransitionNet,
    cut_probabilities,
    load_model,
    pair_cut_probabilities,
    save_model,
)
from ndvr_jax.pdvr.stitching import PairSampler, stitch_query, synthetic_videos
from ndvr_jax.pdvr.training import binary_scores, run_training

CONFIG = os.path.join(os.path.dirname(__file__), "..", "configs", "transition_demo.py")


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_model_layers_and_save_load(tmp_path):
    model = TransitionNet(6, rngs=nnx.Rngs(0))
    assert [d.kernel.shape for d in model.dense] == [(24, 1000), (1000, 512), (512, 128)]
    assert [n.scale.shape for n in model.norms] == [(1000,), (512,), (128,)]
    assert model.out.kernel.shape == (128, 2)
    pairs = np.random.default_rng(0).normal(size=(5, 2, 6)).astype(np.float32)
    want = pair_cut_probabilities(model, pairs)
    save_model(model, tmp_path / "m.npz")
    np.testing.assert_allclose(pair_cut_probabilities(load_model(tmp_path / "m.npz"), pairs), want)
    cut = cut_probabilities(model, pairs[:, 0])
    assert cut[0] == 1.0 and cut.shape == (5,)
    np.testing.assert_allclose(
        cut[1:], pair_cut_probabilities(model, np.stack([pairs[:4, 0], pairs[1:, 0]], 1)), rtol=1e-6
    )


def test_pair_sampler_labels_and_share():
    videos = synthetic_videos(6, 30, 16, seed=1)
    sampler = PairSampler(videos, strength=0.0, noise=0.0, jump_share=0.0)
    pairs, labels = sampler.sample(400, positive_share=0.25, seed=0)
    assert pairs.shape == (400, 2, 16) and 0.18 < labels.mean() < 0.32
    cos = np.sum(pairs[:, 0] * pairs[:, 1], axis=-1)
    assert cos[labels == 0].min() > cos[labels == 1].mean()  # consecutive frames are close
    again = sampler.sample(400, positive_share=0.25, seed=0)
    np.testing.assert_array_equal(again[0], pairs)
    assert sampler.sample(50, 1.0, seed=3)[1].all() and not sampler.sample(50, 0.0, seed=3)[1].any()


def test_stitched_query_records_its_sources():
    videos = [_unit(np.random.default_rng(i).normal(size=(20, 8))) for i in range(3)]
    fillers = [_unit(np.random.default_rng(9).normal(size=(20, 8)))]
    rng = np.random.default_rng(0)
    q = stitch_query(videos, fillers, rng, num_parts=4, strength=0.0, noise=0.0)
    copied = q.source >= 0
    want = np.stack(
        [videos[s][p] for s, p in zip(q.source[copied], q.position[copied], strict=True)]
    )
    np.testing.assert_allclose(q.frames[copied], want, atol=1e-6)
    starts = np.flatnonzero(q.cut)
    assert starts[0] == 0 and len(starts) >= 4
    assert np.all(q.source[starts[1:]] != q.source[starts[1:] - 1]) or np.any(
        np.abs(np.diff(q.position))[starts[1:] - 1] > 2
    )


def test_binary_scores():
    out = binary_scores(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1]))
    assert out == {"accuracy": 0.5, "precision": 0.5, "recall": 0.5}


def test_config_builds():
    for arg in ("", "runlocal"):
        config = load_config_file(CONFIG, arg)
        assert config.task == "transition" and config.batch_size % 8 == 0


def test_run_training_runlocal_learns(tmp_path):
    summary = run_training(load_config_file(CONFIG, "runlocal"), str(tmp_path))
    for name in ("transition_model.npz", "transition_pr.png", "transition_summary.json"):
        assert (tmp_path / name).is_file()
    assert set(summary["accuracy_by_positive_share"]) == {"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}
    assert summary["average_precision"] > 0.9 and summary["accuracy"] > 0.75
    written = json.loads((tmp_path / "transition_summary.json").read_text())
    assert written["model"] == summary["model"] and len(written["pr_curve"]["precision"]) == 20
