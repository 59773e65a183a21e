"""MAC (maximum activation of convolutions) pooling over several layers, whole-frame or regional."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["mac", "num_regions", "regional_mac"]

# As tf.nn.l2_normalize: x / sqrt(max(sum(x^2), eps)); all-zero vectors stay zero.
_EPS = 1e-12


def _l2_normalize(x: jax.Array, axis: int) -> jax.Array:
    sq = jnp.sum(jnp.square(x), axis=axis, keepdims=True)
    return x * jax.lax.rsqrt(jnp.maximum(sq, _EPS))


def _check_maps(activations: Sequence[jax.Array]) -> None:
    if not activations:
        raise ValueError("mac() needs at least one activation map")
    for a in activations:
        if a.ndim != 4:
            raise ValueError(f"expected NHWC activations, got shape {a.shape}")


def mac(activations: Sequence[jax.Array]) -> jax.Array:
    """Multi-layer MAC descriptor: `[B, H_l, W_l, C_l]` maps -> `[B, sum_l C_l]` float32.

    Per layer: L2-normalise over channels at every position, max over H x W, L2-normalise the
    layer vector; the layer vectors are concatenated in order (so the result has norm
    sqrt(#layers)). Computed in float32 whatever the activations' dtype.
    """
    _check_maps(activations)
    vectors = []
    for a in activations:
        a = _l2_normalize(a.astype(jnp.float32), axis=-1)
        vectors.append(_l2_normalize(jnp.max(a, axis=(1, 2)), axis=-1))
    return jnp.concatenate(vectors, axis=-1)


def num_regions(grid: int) -> int:
    """Regions of `regional_mac(..., grid)`: the whole frame, plus grid x grid cells if grid > 1."""
    if grid < 1:
        raise ValueError(f"the region grid must be at least 1, got {grid}")
    return 1 if grid == 1 else 1 + grid * grid


def grid_masks(size: int, grid: int) -> np.ndarray:
    """`[grid, size]` bool: cell i covers positions floor(i·size/grid) .. ceil((i+1)·size/grid)
    − 1, so the cells cover every position, overlap by one where `grid` does not divide `size`,
    and are never empty (a map smaller than the grid repeats positions)."""
    i = np.arange(grid)[:, None]
    position = np.arange(size)[None, :]
    return (position >= (i * size) // grid) & (position < -((-(i + 1) * size) // grid))


def _cell_max(a: jax.Array, grid: int) -> jax.Array:
    """`[B, H, W, C]` -> `[B, grid, grid, C]` max over each cell (masked, separable: W then H)."""
    rows = jnp.asarray(grid_masks(a.shape[1], grid))
    cols = jnp.asarray(grid_masks(a.shape[2], grid))
    a = jnp.max(jnp.where(cols[None, None, :, :, None], a[:, :, None], -jnp.inf), axis=3)
    return jnp.max(jnp.where(rows[None, :, :, None, None], a[:, None], -jnp.inf), axis=2)


def regional_mac(activations: Sequence[jax.Array], grid: int) -> jax.Array:
    """ViSiL-style regional MAC: `[B, H_l, W_l, C_l]` maps -> `[B, R, sum_l C_l]` float32.

    Region 0 is the whole frame (exactly `mac`), then, for `grid` > 1, the grid x grid cells
    (`grid_masks`) row by row (`R = num_regions(grid)`). Per layer and region as `mac`:
    L2-normalise over channels at every position, max over the region, L2-normalise; layers are
    concatenated in order.
    """
    _check_maps(activations)
    count = num_regions(grid)
    vectors = []
    for a in activations:  # a handful of layers; the regions are vectorised
        a = _l2_normalize(a.astype(jnp.float32), axis=-1)
        if count == 1:
            pooled = jnp.max(a, axis=(1, 2))[:, None]
        else:
            cells = _cell_max(a, grid).reshape(a.shape[0], grid * grid, a.shape[-1])
            pooled = jnp.concatenate([jnp.max(cells, axis=1, keepdims=True), cells], axis=1)
        vectors.append(_l2_normalize(pooled, axis=-1))
    return jnp.concatenate(vectors, axis=-1)
