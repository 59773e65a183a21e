"""Frame-level Chamfer similarity of videos: for each query frame the best cosine similarity over
a database video's frames, averaged over the query's frames (ViSiL's video-level Chamfer without
its learned parts; a training-free visual system).

Videos of any lengths are batched by `ndvr_jax.search.frame_batches` on both sides, so memory is
bounded by one block of `[Bq, Nb, T, S]` cells (`max_cells`), never by Q·N·T·S; each block shape
compiles once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ndvr_jax.search import frame_batches, l2_normalize


@jax.jit
def _block(queries, query_mask, database, database_mask):
    """[Bq, Nb] Chamfer similarity of padded, masked frame blocks."""
    sim = jnp.einsum("qtd,nsd->qnts", l2_normalize(queries), l2_normalize(database))
    best = jnp.max(jnp.where(database_mask[None, :, None, :], sim, -jnp.inf), axis=-1)
    best = jnp.where(query_mask[:, None, :], best, 0.0)
    counts = jnp.maximum(query_mask.sum(-1), 1)[:, None]
    return best.sum(-1) / counts


def chamfer_similarity(
    queries: Sequence[np.ndarray], database: Sequence[np.ndarray], max_cells: int = 1 << 24
) -> np.ndarray:
    """[Q, N] Chamfer similarity of `[n_i, D]` query and database frame features.

    A database video without frames scores -inf (it can never be a match); `max_cells` bounds
    the similarity cells of one compiled block (about 4 bytes each).
    """
    return blockwise_similarity(queries, database, _block, max_cells)


def blockwise_similarity(
    queries: Sequence[np.ndarray],
    database: Sequence[np.ndarray],
    block: Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array],
    max_cells: int = 1 << 24,
    cells_per_frame_pair: int = 1,
) -> np.ndarray:
    """[Q, N] of `block(q_frames [Bq, T, W], q_mask [Bq, T], d_frames [Nb, S, W], d_mask [Nb, S])
    -> [Bq, Nb]` over `frame_batches` of `[n_i, W]` videos on both sides.

    Blocks are sized so that Bq·T·Nb·S·`cells_per_frame_pair` (the cells `block` computes for
    each pair of frames, e.g. R² for regions) stays about `max_cells`.
    """
    if not queries or not database:
        raise ValueError("chamfer_similarity needs at least one query and one database video")
    dim = queries[0].shape[1]
    frames_per_side = max(8, int(np.sqrt(max_cells / cells_per_frame_pair)))
    side = frames_per_side * dim  # elements per side: Bq·T·W, Nb·S·W
    out = np.empty((len(queries), len(database)), np.float32)
    database_blocks = list(frame_batches(list(database), side))
    for q_rows, q_frames, q_mask in frame_batches(list(queries), side):
        for d_rows, d_frames, d_mask in database_blocks:
            scores = np.asarray(block(q_frames, q_mask, d_frames, d_mask))
            out[np.ix_(q_rows, d_rows)] = scores[: len(q_rows), : len(d_rows)]
    return out
