"""musicnn's VGG in Flax: numerics against numpy with TF-named weights, front-end, real weights."""

import importlib.util

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from numpy.lib.stride_tricks import sliding_window_view

from ndvr_jax.backbones import musicnn
from ndvr_jax.backbones.mac import mac
from ndvr_jax.backbones.tf_checkpoint import read_checkpoint
from ndvr_jax.io.audio import AudioStatus
from tests.test_tf_checkpoint import write_bundle

BN = ["batch_normalization"] + [f"batch_normalization_{i}" for i in range(1, 6)]


def tf_weights(rng, classes=7):
    weights = {}
    for i, name in enumerate(BN):
        c = 1 if i == 0 else musicnn.FILTERS
        weights |= {
            f"{name}/gamma": rng.uniform(0.5, 1.5, c),
            f"{name}/beta": rng.normal(0, 0.1, c),
            f"{name}/moving_mean": rng.normal(0, 0.1, c),
            f"{name}/moving_variance": rng.uniform(0.5, 1.5, c),
        }
    for i in range(5):
        c_in = 1 if i == 0 else musicnn.FILTERS
        scale = 1 / np.sqrt(9 * c_in)
        weights[f"{i + 1}CNN/kernel"] = rng.normal(0, scale, (3, 3, c_in, musicnn.FILTERS))
        weights[f"{i + 1}CNN/bias"] = rng.normal(0, 0.1, musicnn.FILTERS)
    weights["dense/kernel"] = rng.normal(0, 0.1, (256, classes))
    weights["dense/bias"] = rng.normal(0, 0.1, classes)
    return {k: np.asarray(v, np.float32) for k, v in weights.items()}


def np_forward(w, x):
    """TF's vgg: BN(input); 5 × BN(ReLU(conv SAME)) → max pool VALID; returns the pools."""
    bn = lambda x, n: (
        (x - w[f"{n}/moving_mean"]) / np.sqrt(w[f"{n}/moving_variance"] + 1e-3) * w[f"{n}/gamma"]
        + w[f"{n}/beta"]
    )
    x = bn(x[..., None], BN[0])
    pools = []
    for i, (window, strides) in enumerate(musicnn.POOLS):
        padded = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        patches = sliding_window_view(padded, (3, 3), axis=(1, 2))  # [N, H, W, C, 3, 3]
        x = np.einsum("nhwcab,abco->nhwo", patches, w[f"{i + 1}CNN/kernel"])
        x = bn(np.maximum(x + w[f"{i + 1}CNN/bias"], 0), BN[i + 1])
        x = sliding_window_view(x, window, axis=(1, 2))[:, :: strides[0], :: strides[1]]
        x = x.max(axis=(-2, -1))
        pools.append(x)
    return pools


@pytest.fixture(scope="module")
def weights_and_model(tmp_path_factory):
    weights = tf_weights(np.random.default_rng(0))
    path = tmp_path_factory.mktemp("ckpt") / "model"
    write_bundle(path, weights, entries_per_block=7)
    return weights, musicnn.load_musicnn(path)


def test_matches_numpy_with_tf_weights(weights_and_model):
    weights, model = weights_and_model
    x = np.random.default_rng(1).uniform(0, 3, (2, 100, 64)).astype(np.float32)
    pools = model(jnp.asarray(x))
    expected = np_forward(weights, x)
    assert [p.shape for p in pools] == [e.shape for e in expected]
    for got, want in zip(pools, expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-4)
    assert mac(pools).shape == (2, musicnn.FEATURE_DIM)


def test_full_window_classifier(weights_and_model):
    weights, model = weights_and_model
    x = np.random.default_rng(2).uniform(0, 3, (1, 187, 96)).astype(np.float32)
    last = np_forward(weights, x)[-1]
    assert last.shape == (1, 2, 1, 128)
    logits = last.reshape(1, -1) @ weights["dense/kernel"] + weights["dense/bias"]
    np.testing.assert_allclose(
        model.classify(jnp.asarray(x)), 1 / (1 + np.exp(-logits)), rtol=1e-4, atol=1e-5
    )


def test_front_end_windows_and_statuses():
    sr = musicnn.AUDIO.sample_rate
    t = np.arange(int(4.5 * sr)) / sr
    tone = 0.2 * np.sin(2 * np.pi * 440 * t)
    windows = musicnn.waveform_windows(tone)
    n_frames = len(t) // 256 + 1
    assert windows.status is AudioStatus.OK
    assert windows.windows.shape == (int(np.ceil((n_frames - 187) / 62)) + 1, 187, 96)
    np.testing.assert_allclose(windows.windows[0], musicnn.log_mel(tone / 0.2)[:187], rtol=1e-5)
    assert musicnn.waveform_windows(np.zeros(sr)).status is AudioStatus.SILENT
    assert musicnn.waveform_windows(tone[: sr // 2]).status is AudioStatus.TOO_SHORT


def test_checkpoint_errors(tmp_path):
    weights = tf_weights(np.random.default_rng(3))
    model = nnx.eval_shape(lambda: musicnn.MusicnnVGG(7, rngs=nnx.Rngs(0)))
    with pytest.raises(KeyError, match="2CNN/bias"):
        musicnn.assign_checkpoint(model, {k: v for k, v in weights.items() if k != "2CNN/bias"})
    weights["3CNN/kernel"] = weights["3CNN/kernel"][..., :5]
    with pytest.raises(ValueError, match="3CNN/kernel"):
        musicnn.assign_checkpoint(model, weights)


@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None, reason="musicnn not installed")
def test_pretrained_checkpoints_load():
    for name in musicnn.MODELS:
        model = musicnn.load_musicnn(name)
        x = np.random.default_rng(4).uniform(0, 3, (1, 187, 96)).astype(np.float32)
        tags = np.asarray(model.classify(jnp.asarray(x)))
        assert tags.shape == (1, 50) and np.all((tags > 0) & (tags < 1))
        stored = read_checkpoint(musicnn.checkpoint_path(name))
        np.testing.assert_array_equal(model.convs[4].kernel[...], stored["5CNN/kernel"])
        np.testing.assert_array_equal(
            model.bns[2].var[...], stored["batch_normalization_3/moving_variance"]
        )
