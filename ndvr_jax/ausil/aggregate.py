"""How a segment-similarity matrix becomes one video similarity, and how a query's scores are
normalised against the database (the untrained AuSiL path: PCA whitening + these).

Aggregates of a `[B, N, M]` batch over each pair's valid `rows × cols` block:
  * `chamfer`: mean over query segments of their best reference segment (AuSiL's own);
  * `reference`: mean over reference segments of their best query segment (a query that holds
    the whole reference among other footage, e.g. a compilation, still scores high);
  * `symmetric`: the mean of both directions;
  * `top`: the mean of the best `top_fraction` of the query segments' maxima (partial copies:
    the query's foreign parts do not pull the score down).
`znorm`: each query's row of scores as z-scores against the database's scores for it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

AGGREGATES = ("chamfer", "reference", "symmetric", "top")


def _masked_max(sim: jax.Array, valid: jax.Array, axis: int) -> jax.Array:
    return jnp.max(jnp.where(valid, sim, jnp.finfo(sim.dtype).min), axis=axis)


def _masked_mean(x: jax.Array, valid: jax.Array, count: jax.Array) -> jax.Array:
    return jnp.sum(jnp.where(valid, x, 0.0), axis=1) / jnp.maximum(count, 1).astype(x.dtype)


def _top_mean(x: jax.Array, valid: jax.Array, count: jax.Array, fraction: float) -> jax.Array:
    """Mean of the `ceil(fraction * count)` largest valid entries of each row of `x` `[B, N]`."""
    ranked = -jnp.sort(-jnp.where(valid, x, -jnp.inf), axis=1)
    k = jnp.maximum(jnp.ceil(fraction * count.astype(x.dtype)), 1.0)
    keep = jnp.arange(x.shape[1])[None, :] < k[:, None]
    return jnp.sum(jnp.where(keep, ranked, 0.0), axis=1) / k


def aggregate(
    sim: jax.Array, rows: jax.Array, cols: jax.Array, name: str, top_fraction: float = 0.5
) -> jax.Array:
    """Similarity `[B]` of the segment similarities `sim` `[B, N, M]` by the aggregate `name`."""
    if name not in AGGREGATES:
        raise ValueError(f"aggregate must be one of {AGGREGATES}, not {name!r}")
    row_valid = jnp.arange(sim.shape[1])[None, :] < rows[:, None]
    col_valid = jnp.arange(sim.shape[2])[None, :] < cols[:, None]
    row_max = _masked_max(sim, col_valid[:, None, :], axis=2)  # [B, N]
    if name == "top":
        return _top_mean(row_max, row_valid, rows, top_fraction)
    forward = _masked_mean(row_max, row_valid, rows)
    if name == "chamfer":
        return forward
    col_max = _masked_max(sim, row_valid[:, :, None], axis=1)  # [B, M]
    backward = _masked_mean(col_max, col_valid, cols)
    return backward if name == "reference" else 0.5 * (forward + backward)


def znorm(matrix: np.ndarray) -> np.ndarray:
    """Each row of `[Q, N]` scores minus its mean over the database, over its standard deviation
    (NaN, a pair without a score, is left out and kept)."""
    mean = np.nanmean(matrix, axis=1, keepdims=True)
    std = np.nanstd(matrix, axis=1, keepdims=True)
    return ((matrix - mean) / np.maximum(std, 1e-6)).astype(matrix.dtype)
