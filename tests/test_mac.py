"""MAC pooling against a plain numpy implementation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax.backbones import mac


def mac_numpy(activations: list[np.ndarray]) -> np.ndarray:
    out = []
    for a in activations:
        a = np.asarray(a, np.float64)
        a = a / np.sqrt(np.maximum((a**2).sum(-1, keepdims=True), 1e-12))
        v = a.reshape(a.shape[0], -1, a.shape[-1]).max(1)
        out.append(v / np.sqrt(np.maximum((v**2).sum(-1, keepdims=True), 1e-12)))
    return np.concatenate(out, -1)


def random_maps(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    shapes = [(3, 6, 5, 4), (3, 3, 3, 8), (3, 1, 2, 5)]
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def test_matches_numpy() -> None:
    maps = random_maps()
    ours = mac([jnp.asarray(m) for m in maps])
    assert ours.shape == (3, 17) and ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), mac_numpy(maps), rtol=1e-5, atol=1e-6)


def test_each_layer_is_unit_norm() -> None:
    ours = np.asarray(mac([jnp.asarray(m) for m in random_maps(1)]))
    norms = [np.linalg.norm(ours[:, a:b], axis=-1) for a, b in ((0, 4), (4, 12), (12, 17))]
    np.testing.assert_allclose(np.stack(norms), 1.0, rtol=1e-5)


def test_per_position_normalisation_matters() -> None:
    # One position with huge activations must not dominate: after the per-position L2 norm the
    # max over positions picks each channel's largest *relative* response.
    a = np.zeros((1, 1, 2, 2), np.float32)
    a[0, 0, 0] = [100.0, 0.0]  # strong, all channel 0
    a[0, 0, 1] = [1.0, 1.0]  # weak, balanced
    ours = np.asarray(mac([jnp.asarray(a)]))[0]
    expected = np.array([1.0, np.sqrt(0.5)]) / np.linalg.norm([1.0, np.sqrt(0.5)])
    np.testing.assert_allclose(ours, expected, rtol=1e-6)


def test_zero_map_gives_zeros_not_nan() -> None:
    out = np.asarray(mac([jnp.zeros((2, 3, 3, 4)), jnp.ones((2, 2, 2, 3))]))
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[:, :4], 0.0)
    np.testing.assert_allclose(out[:, 4:], 1 / np.sqrt(3), rtol=1e-6)


def test_bfloat16_input_and_jit() -> None:
    maps = random_maps(2)
    ours = jax.jit(mac)([jnp.asarray(m, jnp.bfloat16) for m in maps])
    assert ours.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(ours), mac_numpy(maps), atol=1e-2)


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        mac([])
    with pytest.raises(ValueError, match="NHWC"):
        mac([jnp.zeros((2, 3, 4))])
