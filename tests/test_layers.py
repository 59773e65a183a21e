"""The shared conv: its CPU fast paths agree with XLA's convolution, and can be switched off."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax import lax

from ndvr_jax.backbones import create_backbone, mac
from ndvr_jax.backbones.layers import _cpu_route, conv_general_dilated, set_conv_impl

NHWC = ("NHWC", "HWIO", "NHWC")


def reference(x, w, strides, padding, groups: int = 1) -> np.ndarray:
    dims = lax.conv_dimension_numbers(x.shape, w.shape, NHWC)
    x, w = (jnp.asarray(a, jnp.float32) for a in (x, w))
    out = lax.conv_general_dilated(
        x, w, strides, padding, dimension_numbers=dims, feature_group_count=groups
    )
    return np.asarray(out)


@pytest.mark.parametrize(
    "x_shape, w_shape, strides, padding, groups, dtype, route",
    [
        # bf16 matmuls: vertical taps on the output axis, full im2col, strided, 1x1, odd C (u16)
        ((2, 9, 7, 8), (3, 3, 8, 6), (1, 1), ((1, 1), (1, 1)), 1, jnp.bfloat16, "matmul"),
        ((2, 9, 7, 4), (3, 3, 4, 16), (1, 1), "SAME", 1, jnp.bfloat16, "matmul"),
        ((2, 9, 7, 5), (5, 5, 5, 6), (1, 1), "VALID", 1, jnp.bfloat16, "matmul"),
        ((2, 9, 7, 5), (3, 2, 5, 6), (1, 1), ((1, 2), (0, 1)), 1, jnp.bfloat16, "matmul"),
        ((2, 11, 10, 3), (7, 7, 3, 8), (2, 2), ((3, 3), (3, 3)), 1, jnp.bfloat16, "matmul"),
        ((2, 9, 7, 6), (1, 1, 6, 4), (2, 2), "SAME", 1, jnp.bfloat16, "matmul"),
        # depthwise, any dtype, strided and TF 'SAME' with odd sizes
        ((2, 9, 7, 6), (3, 3, 1, 6), (1, 1), "SAME", 6, jnp.float32, "depthwise"),
        ((2, 10, 7, 6), (5, 5, 1, 6), (2, 2), "SAME", 6, jnp.bfloat16, "depthwise"),
        # left to XLA
        ((2, 9, 7, 6), (3, 3, 6, 4), (1, 1), "SAME", 1, jnp.float32, None),
        ((2, 9, 7, 6), (3, 3, 3, 4), (1, 1), "SAME", 2, jnp.bfloat16, None),
    ],
)
def test_conv_matches_xla(x_shape, w_shape, strides, padding, groups, dtype, route) -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal(x_shape), dtype)
    w = jnp.asarray(rng.standard_normal(w_shape), dtype)
    dims = lax.conv_dimension_numbers(x_shape, w_shape, NHWC)
    assert _cpu_route(x, w, strides, (1, 1, 1, 1), dims, groups) == route

    @jax.jit
    def run(x, w):
        return conv_general_dilated(
            x, w, strides, padding, dimension_numbers=dims, feature_group_count=groups
        )

    out = run(x, w)
    expected = reference(x, w, strides, padding, groups)
    assert out.dtype == dtype and out.shape == expected.shape
    tol = 1e-5 if dtype == jnp.float32 else 1e-2  # bf16 output rounding
    scale = np.abs(expected).max()
    np.testing.assert_allclose(np.asarray(out, np.float32), expected, atol=tol * scale)


def test_set_conv_impl_switches_every_conv() -> None:
    model = create_backbone("vgg16", weights=None, dtype=jnp.bfloat16, rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(1).uniform(0, 255, (1, 32, 32, 3)), jnp.float32)
    fast = np.asarray(mac(model(x)))
    set_conv_impl(model, "xla")
    convs = [n for _, n in nnx.iter_graph(model) if isinstance(n, nnx.Conv)]
    assert convs and all(c.conv_general_dilated is lax.conv_general_dilated for c in convs)
    slow = np.asarray(mac(model(x)))
    cosine = (fast * slow).sum(-1) / np.linalg.norm(fast, axis=-1) / np.linalg.norm(slow, axis=-1)
    assert np.all(cosine > 0.999)
    with pytest.raises(ValueError, match="unknown conv"):
        set_conv_impl(model, "cudnn")
