"""Region Chamfer similarity of videos stored as regional MAC `[T, R, D]` (region 0 the frame).

Two frames compare region by region (`sim[r, u]`, cosine of query region r and reference region
u), reduced by one of `FRAME_SIMILARITIES`:

  visil      mean over query regions of the best reference region (ViSiL's frame Chamfer);
  symmetric  the mean of `visil` both ways;
  inset      whole vs whole, or the best match of one frame as a whole with a region of the
             other, either way, less `margin`: `max(sim[0, 0], max_r>0 sim[r, 0] − margin,
             max_u>0 sim[0, u] − margin)`: a source shown small inside the other video still
             scores as a copy; the margin keeps the regions of unrelated videos (which lift
             every score a little) from overtaking a whole-frame match.

Videos then compare by frame Chamfer (best reference frame, mean over query frames), chunked
and masked by `ndvr_jax.chamfer.blockwise_similarity`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from ndvr_jax.ausil.model import PCAWhitening
from ndvr_jax.chamfer import blockwise_similarity
from ndvr_jax.regional.features import fit_whitening_on, whiten_regions
from ndvr_jax.search import l2_normalize

FRAME_SIMILARITIES = ("visil", "symmetric", "inset")
REGION_MARGIN = 0.01  # `inset`'s default margin, chosen on the demo generator's seeds
# Whitening fitted on unlabelled videos of the development set (`weights/MODEL_CARD.md`).
DEFAULT_WHITENING = Path(__file__).parent / "weights" / "region_pca.npz"
DEFAULT_WHITENING_DIM = 2048


def frame_similarity(sim: jax.Array, mode: str, margin: float = 0.0, xp=jnp) -> jax.Array:
    """Reduces region similarities `[..., R, U]` (query regions, reference regions) to `[...]`
    (`margin`: `inset` only; `xp`: `jax.numpy`, or `numpy` for arrays of many shapes that would
    each compile)."""
    if mode == "visil":
        return xp.mean(xp.max(sim, axis=-1), axis=-1)
    if mode == "symmetric":
        visil = frame_similarity(sim, "visil", xp=xp)
        return 0.5 * (visil + xp.mean(xp.max(sim, axis=-2), axis=-1))
    if mode == "inset":
        regions = xp.maximum(xp.max(sim[..., 1:, 0], -1, initial=-xp.inf),
                             xp.max(sim[..., 0, 1:], -1, initial=-xp.inf))  # fmt: skip
        return xp.maximum(sim[..., 0, 0], regions - margin)
    raise ValueError(f"frame similarity must be one of {FRAME_SIMILARITIES}, got {mode!r}")


@functools.partial(jax.jit, static_argnames=("regions", "mode", "margin"))
def _block(queries, query_mask, database, database_mask, *, regions: int, mode: str, margin):
    """[Bq, Nb] region Chamfer of padded, masked blocks of flattened `[T, R·D]` frames."""
    split = lambda x: l2_normalize(x.reshape(*x.shape[:2], regions, -1))
    sim = jnp.einsum("qtrd,nsud->qntsru", split(queries), split(database))
    frames = frame_similarity(sim, mode, margin)
    best = jnp.max(jnp.where(database_mask[None, :, None, :], frames, -jnp.inf), axis=-1)
    best = jnp.where(query_mask[:, None, :], best, 0.0)
    return best.sum(-1) / jnp.maximum(query_mask.sum(-1), 1)[:, None]


def region_chamfer_similarity(
    queries: Sequence[np.ndarray],
    database: Sequence[np.ndarray],
    mode: str = "inset",
    max_cells: int = 1 << 24,
    margin: float = 0.0,
) -> np.ndarray:
    """[Q, N] region Chamfer similarity of `[n_i, R, D]` query and database videos
    (`frame_similarity` `mode` and `margin`).

    Every video needs the same R and D; a database video without frames scores -inf;
    `max_cells` bounds the region-pair cells of one compiled block (about 4 bytes each).
    """
    if mode not in FRAME_SIMILARITIES:
        raise ValueError(f"frame similarity must be one of {FRAME_SIMILARITIES}, got {mode!r}")
    videos = [*queries, *database]
    if not videos or any(v.ndim != 3 or v.shape[1:] != videos[0].shape[1:] for v in videos):
        raise ValueError("region Chamfer needs [n, R, D] features with one R and D for all")
    regions = videos[0].shape[1]
    flat = lambda vs: [np.asarray(v, np.float32).reshape(len(v), -1) for v in vs]
    block = functools.partial(_block, regions=regions, mode=mode, margin=float(margin))
    return blockwise_similarity(flat(queries), flat(database), block, max_cells, regions**2)


def regional_similarities(
    queries: Sequence[np.ndarray],
    database: Sequence[np.ndarray],
    mode: str = "inset",
    whitening: str = "",
    margin: float = 0.0,
) -> np.ndarray:
    """`region_chamfer_similarity` after the whitening `whitening` names (`region_whitening`)."""
    pca = region_whitening(whitening, database)
    if pca is not None:
        queries, database = ([whiten_regions(v, pca) for v in vs] for vs in (queries, database))
    return region_chamfer_similarity(queries, database, mode, margin=margin)


def region_whitening(name: str, database: Sequence[np.ndarray]) -> PCAWhitening | None:
    """The whitening of region vectors that `name` names: "" none; "default" the one shipped in
    the package (`ndvr_jax/regional/weights`, for the default extraction's 2,048-d features:
    none, with a warning, for features of another width); "database" fitted on `database`'s
    own region vectors (`fit_region_whitening`'s recipe); else a saved `.npz`."""
    if not name:
        return None
    width = next((v.shape[-1] for v in database), None)
    if name == "default":
        if width != DEFAULT_WHITENING_DIM:
            logging.warning("the shipped region whitening is for %d-d features, these are %s-d:"
                            " not whitened", DEFAULT_WHITENING_DIM, width)  # fmt: skip
            return None
        return PCAWhitening.load(DEFAULT_WHITENING)
    if name == "database":
        return fit_whitening_on(list(database))
    return PCAWhitening.load(name)
