"""MAC (maximum activation of convolutions) pooling over several layers."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

__all__ = ["mac"]

# As tf.nn.l2_normalize: x / sqrt(max(sum(x^2), eps)); all-zero vectors stay zero.
_EPS = 1e-12


def _l2_normalize(x: jax.Array, axis: int) -> jax.Array:
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, _EPS))


def mac(activations: Sequence[jax.Array]) -> jax.Array:
    """Multi-layer MAC descriptor: `[B, H_l, W_l, C_l]` maps -> `[B, sum_l C_l]` float32.

    Per layer: L2-normalise over channels at every position, max over H x W, L2-normalise the
    layer vector; the layer vectors are concatenated in order (so the result has norm
    sqrt(#layers)). Computed in float32 whatever the activations' dtype.
    """
    if not activations:
        raise ValueError("mac() needs at least one activation map")
    vectors = []
    for a in activations:
        if a.ndim != 4:
            raise ValueError(f"expected NHWC activations, got shape {a.shape}")
        a = _l2_normalize(a.astype(jnp.float32), axis=-1)
        vectors.append(_l2_normalize(jnp.max(a, axis=(1, 2)), axis=-1))
    return jnp.concatenate(vectors, axis=-1)
