"""DML MLP: layout, Glorot-uniform init, forward pass and early/late fusion against numpy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ndvr_jax.dml import model as dml


def _numpy_forward(model, x, act=np.tanh):
    for layer in model.layers:
        x = act(x @ np.asarray(layer.kernel.value) + np.asarray(layer.bias.value))
    return x / np.sqrt(np.maximum((x**2).sum(-1, keepdims=True), 1e-15))


def _normalize(x, zero_mean=True):
    if zero_mean:
        x = x - x.mean(-1, keepdims=True)
    return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-15)


def test_default_layout_and_glorot_uniform_init():
    model = dml.DML(4096, rngs=nnx.Rngs(0))
    shapes = [layer.kernel.value.shape for layer in model.layers]
    assert shapes == [(4096, 2000), (2000, 1000), (1000, 500)]
    for layer in model.layers:
        fan_in, fan_out = layer.kernel.value.shape
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = np.asarray(layer.kernel.value)
        assert np.abs(w).max() <= limit
        # uniform on [-limit, limit]: std = limit / sqrt(3)
        np.testing.assert_allclose(w.std(), limit / np.sqrt(3), rtol=0.02)
        assert not np.asarray(layer.bias.value).any()
    out = model(jnp.ones((3, 4096)))
    assert out.shape == (3, 500)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize(
    ("activation", "act"), [("tanh", np.tanh), ("relu", lambda x: np.maximum(x, 0))]
)
def test_forward_matches_numpy(activation, act):
    model = dml.DML(12, (9, 7), 5, activation, rngs=nnx.Rngs(1))
    x = np.random.default_rng(0).normal(size=(4, 12)).astype(np.float32)
    np.testing.assert_allclose(model(x), _numpy_forward(model, x, act), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dml.embed_video_early(model, x), model(x))


def test_jit_through_split_and_merge():
    model = dml.DML(8, (6,), 4, rngs=nnx.Rngs(2))
    graphdef, state = nnx.split(model)
    x = jnp.ones((2, 8))
    out = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, x)
    np.testing.assert_allclose(out, model(x), rtol=1e-6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="unknown activation"):
        dml.DML(8, activation="swishy", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="positive"):
        dml.DML(8, (0,), 4, rngs=nnx.Rngs(0))


def test_late_fusion_on_a_padded_batch():
    model = dml.DML(10, (8,), 6, rngs=nnx.Rngs(3))
    rng = np.random.default_rng(4)
    lengths = [5, 2, 0, 3]
    videos = [rng.normal(size=(n, 10)).astype(np.float32) + 3.0 for n in lengths]
    batch = np.full((4, 5, 10), 123.0, np.float32)  # padding rows hold garbage
    mask = np.zeros((4, 5), bool)
    for i, v in enumerate(videos):
        batch[i, : len(v)], mask[i, : len(v)] = v, True
    got = np.asarray(dml.embed_video_late(model, batch, mask))
    for i, v in enumerate(videos):
        if len(v) == 0:
            np.testing.assert_array_equal(got[i], 0.0)
            continue
        frames = _numpy_forward(model, _normalize(v.astype(np.float64)))
        want = _normalize(frames.mean(0), zero_mean=False)
        np.testing.assert_allclose(got[i], want, rtol=1e-5, atol=1e-6)


def _bf16(x):
    return np.asarray(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32), np.float64)


@pytest.mark.parametrize("shape", [(6, 16, 5), (5, 7, 3), (4, 12, 9)])
def test_low_precision_matmul_and_its_gradients_use_rounded_inputs(shape):
    m, k, n = shape
    rng = np.random.default_rng(5)
    x, kernel, g = (rng.normal(size=s).astype(np.float32) for s in [(m, k), (k, n), (m, n)])
    out, vjp = jax.vjp(lambda x, w: dml.low_precision_matmul(x, w, jnp.bfloat16), x, kernel)
    assert out.dtype == jnp.float32
    np.testing.assert_allclose(out, _bf16(x) @ _bf16(kernel), rtol=1e-5, atol=1e-5)
    dx, dkernel = vjp(jnp.asarray(g))
    assert dx.dtype == dkernel.dtype == jnp.float32
    np.testing.assert_allclose(dx, _bf16(g) @ _bf16(kernel).T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dkernel, _bf16(x).T @ _bf16(g), rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_keeps_float32_params_and_stays_close():
    exact = dml.DML(12, (9, 7), 5, rngs=nnx.Rngs(1))
    mixed = dml.DML(12, (9, 7), 5, compute_dtype="bfloat16", rngs=nnx.Rngs(1))
    assert dml.DML(12, compute_dtype="float32", rngs=nnx.Rngs(1)).compute_dtype is None
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(nnx.state(mixed, nnx.Param)))
    x = np.random.default_rng(0).normal(size=(2, 3, 12)).astype(np.float32)
    out = mixed(x)
    assert out.shape == (2, 3, 5) and out.dtype == jnp.float32
    np.testing.assert_allclose(out, exact(x), atol=3e-2)
    assert not np.allclose(out, exact(x), atol=1e-6)  # it did round
