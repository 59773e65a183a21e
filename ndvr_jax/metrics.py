"""Retrieval metrics from a similarity matrix: AP, mAP, µAP, PR curves and mAP@k.

Inputs (Q queries, N database items):
  scores        [Q, N] float, higher means more similar.
  relevance     [Q, N] bool, the ground truth.
  mask          [Q, N] bool, the items ranked for each query (default: all). Use it to skip the
                query itself, to rank only a query's ground-truth set (CC_WEB_VIDEO), or to mark
                which items have a score at all.
  num_relevant  [Q] int, the AP denominator (default: relevant items inside the mask). Pass a larger
                count when relevant items have no score (e.g. top-k results): they count as never
                retrieved, as in the FIVR-200K evaluation.

Ranking and ties: per query, the masked-in items are ranked by score descending and tied scores keep
database order (lower index first), i.e. the order of `np.argsort(-scores, kind="stable")`. NaN
ranks as -inf and -0.0 as 0.0. µAP pools every masked-in pair and ranks the pool the same way by
(score descending, row-major pair index q * N + n).

AP = (1/R) Σ_{relevant ranks i} hits(i) / i. A query with R = 0 gets AP 0 and is left out of every
mean over queries. Everything here is vectorised and jit-able; `chunked_query_metrics` and
`chunked_micro_average_precision` bound memory for large problems by working on blocks of queries.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

NUM_RECALL_LEVELS = 20
RECALL_LEVELS = np.arange(1, NUM_RECALL_LEVELS + 1) / NUM_RECALL_LEVELS  # 0.05, 0.10, ..., 1.0

Denominator = Literal["hits", "min_k_relevant"]


class QueryMetrics(NamedTuple):
    """Per-query results of `chunked_query_metrics` (numpy arrays)."""

    average_precision: np.ndarray  # [Q]
    interpolated_precision: np.ndarray  # [Q, num_levels]
    num_relevant: np.ndarray  # [Q]
    average_precision_at_k: np.ndarray | None  # [Q], when k was given


def _canonical(scores: jax.Array) -> jax.Array:
    """Float scores with NaN → -inf and -0.0 → 0.0, so that sorting matches numpy's ordering."""
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.float32)
    scores = jnp.where(jnp.isnan(scores), -jnp.inf, scores)
    return jnp.where(scores == 0, jnp.zeros_like(scores), scores)


def _prepare(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None,
    num_relevant: jax.Array | None,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Relevance restricted to the mask, the mask, and the AP denominators."""
    mask = jnp.ones(jnp.shape(scores), bool) if mask is None else jnp.asarray(mask, bool)
    relevance = jnp.asarray(relevance, bool) & mask
    if num_relevant is None:
        num_relevant = relevance.sum(-1)
    return relevance, mask, jnp.asarray(num_relevant, jnp.int32)


def _ranked_relevance(scores: jax.Array, relevance: jax.Array, mask: jax.Array) -> jax.Array:
    """[Q, N] int32 0/1 relevance in ranked order; masked-out items go last with relevance 0."""
    invalid = (~mask).astype(jnp.int32)
    ranked = (relevance & mask).astype(jnp.int32)
    _, _, ranked = lax.sort((invalid, -_canonical(scores), ranked), is_stable=True, num_keys=2)
    return ranked


def _ranks(ranked: jax.Array) -> jax.Array:
    return jnp.arange(1, ranked.shape[-1] + 1, dtype=jnp.int32)


def _ap_from_ranked(ranked: jax.Array, num_relevant: jax.Array) -> jax.Array:
    hits = jnp.cumsum(ranked, -1)
    total = jnp.sum(jnp.where(ranked > 0, hits / _ranks(ranked), 0.0), -1)
    return jnp.where(num_relevant > 0, total / jnp.maximum(num_relevant, 1), 0.0)


def _ap_at_k_from_ranked(
    ranked: jax.Array, num_relevant: jax.Array, k: int, denominator: Denominator
) -> jax.Array:
    top = ranked[..., :k]
    hits = jnp.cumsum(top, -1)
    total = jnp.sum(jnp.where(top > 0, hits / _ranks(top), 0.0), -1)
    if denominator == "hits":
        count = hits[..., -1]
    elif denominator == "min_k_relevant":
        count = jnp.minimum(num_relevant, k)
    else:
        raise ValueError(f"denominator must be 'hits' or 'min_k_relevant', got {denominator!r}")
    return jnp.where((num_relevant > 0) & (count > 0), total / jnp.maximum(count, 1), 0.0)


def _interpolated_from_ranked(
    ranked: jax.Array, num_relevant: jax.Array, num_levels: int
) -> jax.Array:
    """Max precision at recall ≥ level, levels 1/L..1; 0 where that recall is never reached."""
    hits = jnp.cumsum(ranked, -1)
    precision = jnp.where(ranked > 0, hits / _ranks(ranked), 0.0)
    best_from = lax.cummax(precision, axis=precision.ndim - 1, reverse=True)
    best_from = jnp.concatenate([best_from, jnp.zeros_like(best_from[..., :1])], -1)
    # Recall level l / L is reached at the first rank where L * hits >= l * R (exact integers).
    levels = jnp.arange(1, num_levels + 1, dtype=jnp.int32)
    targets = levels * num_relevant[..., None]
    first = jax.vmap(functools.partial(jnp.searchsorted, side="left"))(num_levels * hits, targets)
    value = jnp.take_along_axis(best_from, first, axis=-1)
    return jnp.where(num_relevant[..., None] > 0, value, 0.0)


@jax.jit
def average_precision(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
) -> jax.Array:
    """[Q] average precision of each query (0 where it has no relevant item)."""
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    return _ap_from_ranked(_ranked_relevance(scores, relevance, mask), num_relevant)


@functools.partial(jax.jit, static_argnames=("k", "denominator"))
def average_precision_at_k(
    scores: jax.Array,
    relevance: jax.Array,
    k: int,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
    denominator: Denominator = "hits",
) -> jax.Array:
    """[Q] AP over the top k ranks (the hashing-literature mAP@k).

    `denominator="hits"` divides by the relevant items found in the top k (DPSH / HashNet; a query
    with none scores 0); `"min_k_relevant"` divides by min(k, R).
    """
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    ranked = _ranked_relevance(scores, relevance, mask)
    return _ap_at_k_from_ranked(ranked, num_relevant, k, denominator)


@functools.partial(jax.jit, static_argnames=("num_levels",))
def interpolated_precision(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
    num_levels: int = NUM_RECALL_LEVELS,
) -> jax.Array:
    """[Q, num_levels] interpolated precision at recall 1/L, 2/L, ..., 1 (default 0.05 ... 1.0)."""
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    ranked = _ranked_relevance(scores, relevance, mask)
    return _interpolated_from_ranked(ranked, num_relevant, num_levels)


@jax.jit
def precision_recall_curve(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Raw per-query curve: precision and recall [Q, N] after each rank; NaN past the last one."""
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    ranked = _ranked_relevance(scores, relevance, mask)
    hits = jnp.cumsum(ranked, -1)
    ranked_in = _ranks(ranked) <= mask.sum(-1, keepdims=True)
    precision = jnp.where(ranked_in, hits / _ranks(ranked), jnp.nan)
    recall = jnp.where(ranked_in, hits / jnp.maximum(num_relevant, 1)[..., None], jnp.nan)
    return precision, recall


def mean_over_queries(values: jax.Array, num_relevant: jax.Array) -> jax.Array:
    """Mean of per-query values ([Q] or [Q, L]) over queries with at least one relevant item."""
    values = jnp.asarray(values)
    keep = jnp.asarray(num_relevant) > 0
    keep = keep.reshape(keep.shape + (1,) * (values.ndim - 1))
    return jnp.sum(jnp.where(keep, values, 0.0), 0) / jnp.maximum(jnp.sum(keep, 0), 1)


@jax.jit
def mean_average_precision(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
) -> jax.Array:
    """mAP over the queries with at least one relevant item."""
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    ap = _ap_from_ranked(_ranked_relevance(scores, relevance, mask), num_relevant)
    return mean_over_queries(ap, num_relevant)


@jax.jit
def micro_average_precision(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
) -> jax.Array:
    """µAP: AP of one ranking of all masked-in (query, item) pairs, R = Σ num_relevant."""
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    flat = lambda x: jnp.reshape(x, (1, -1))
    ranked = _ranked_relevance(flat(scores), flat(relevance), flat(mask))
    return _ap_from_ranked(ranked, jnp.sum(num_relevant)[None])[0]


# ---------------------------------------------------------------------------------------------
# Chunked drivers: blocks of `chunk_size` queries, the last one padded so everything compiles once.


def _host_inputs(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None,
    num_relevant: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Checked numpy inputs: scores, relevance & mask, mask, num_relevant."""
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be [Q, N], got shape {scores.shape}")
    mask = np.ones(scores.shape, bool) if mask is None else np.asarray(mask, bool)
    relevance = np.asarray(relevance, bool)
    if relevance.shape != scores.shape or mask.shape != scores.shape:
        raise ValueError(
            f"scores {scores.shape}, relevance {relevance.shape} and mask {mask.shape} must match"
        )
    relevance = relevance & mask
    found = relevance.sum(-1)
    if num_relevant is None:
        return scores, relevance, mask, found
    num_relevant = np.asarray(num_relevant, np.int64)
    if num_relevant.shape != found.shape:
        raise ValueError(f"num_relevant must be [{len(found)}], got shape {num_relevant.shape}")
    if np.any(num_relevant < found):
        raise ValueError("num_relevant is smaller than the relevant items inside the mask")
    return scores, relevance, mask, num_relevant


def _query_blocks(num_queries: int, chunk_size: int | None) -> tuple[int, range]:
    size = num_queries if chunk_size is None else max(1, min(chunk_size, num_queries))
    return size, range(0, num_queries, size)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(x, [(0, rows - len(x))] + [(0, 0)] * (x.ndim - 1))


@functools.partial(jax.jit, static_argnames=("k", "denominator", "num_levels"))
def _block_metrics(scores, relevance, mask, num_relevant, k, denominator, num_levels):
    ranked = _ranked_relevance(scores, relevance, mask)
    ap_at_k = None if k is None else _ap_at_k_from_ranked(ranked, num_relevant, k, denominator)
    return (
        _ap_from_ranked(ranked, num_relevant),
        _interpolated_from_ranked(ranked, num_relevant, num_levels),
        ap_at_k,
    )


def chunked_query_metrics(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None = None,
    num_relevant: np.ndarray | None = None,
    *,
    k: int | None = None,
    denominator: Denominator = "hits",
    num_levels: int = NUM_RECALL_LEVELS,
    chunk_size: int | None = 16,
) -> QueryMetrics:
    """AP, interpolated precision and (if k) AP@k for every query, `chunk_size` queries at a time.

    Peak memory is a few [chunk_size, N] arrays (chunk_size=None: all queries at once).
    """
    scores, relevance, mask, num_relevant = _host_inputs(scores, relevance, mask, num_relevant)
    if k is not None:
        k = min(k, scores.shape[1])
    size, starts = _query_blocks(len(scores), chunk_size)
    outputs = []
    for start in starts:
        block = [_pad_rows(x[start : start + size], size) for x in (scores, relevance, mask)]
        count = _pad_rows(num_relevant[start : start + size], size)
        out = _block_metrics(*block, count, k, denominator, num_levels)
        outputs.append([None if o is None else np.asarray(o)[: len(scores) - start] for o in out])
    ap, interp, ap_at_k = (
        None if parts[0] is None else np.concatenate(parts) for parts in zip(*outputs, strict=True)
    )
    return QueryMetrics(ap, interp, num_relevant, ap_at_k)


@jax.jit
def _pooled_counts_before(scores, mask, offset, key_scores, key_flat):
    """For each key (score, flat index) the number of masked-in pairs of this block ranked above it.

    The block covers the flat pair indices [offset, offset + scores.size).
    """
    scores = _canonical(scores).reshape(-1)
    valid = mask.reshape(-1)
    iota = jnp.arange(scores.shape[0], dtype=jnp.int32)
    negated = jnp.where(valid, -scores, jnp.inf)
    _, negated, order = lax.sort(((~valid).astype(jnp.int32), negated, iota), num_keys=2)
    target = -_canonical(key_scores)
    above = jnp.searchsorted(negated, target, side="left")  # strictly higher score
    at_least = jnp.minimum(jnp.searchsorted(negated, target, side="right"), valid.sum())
    position = jnp.zeros_like(iota).at[order].set(iota)  # rank of each pair within the block
    local = key_flat - offset
    inside = (local >= 0) & (local < scores.shape[0])
    within = position[jnp.clip(local, 0, scores.shape[0] - 1)]
    # Ties go to the lower flat index: all of an earlier block's ties rank above the key.
    return jnp.where(inside, within, jnp.where(local < 0, above, at_least))


def chunked_micro_average_precision(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None = None,
    num_relevant: np.ndarray | None = None,
    *,
    chunk_size: int = 16,
) -> float:
    """µAP equal to `micro_average_precision`, computed on blocks of `chunk_size` queries.

    The relevant pairs are collected once; each block then adds, for every relevant pair, how many
    of its pairs rank above it (one sort and two binary searches per block).
    """
    scores, relevance, mask, num_relevant = _host_inputs(scores, relevance, mask, num_relevant)
    total = int(num_relevant.sum())
    if total == 0:
        return 0.0
    if scores.size >= np.iinfo(np.int32).max:
        raise ValueError(f"too many pairs for int32 indices: {scores.size}")
    rows, cols = np.nonzero(relevance)
    key_flat = (rows * scores.shape[1] + cols).astype(np.int32)
    key_scores = np.asarray(_canonical(scores[rows, cols]))
    hits = np.empty(len(key_flat), np.float64)
    hits[np.lexsort((key_flat, -key_scores))] = np.arange(1, len(key_flat) + 1)
    size, starts = _query_blocks(len(scores), chunk_size)
    above = np.zeros(len(key_flat), np.int64)
    for start in starts:
        block = [_pad_rows(x[start : start + size], size) for x in (scores, mask)]
        offset = np.int32(start * scores.shape[1])
        above += np.asarray(_pooled_counts_before(*block, offset, key_scores, key_flat))
    return float(np.sum(hits / (above + 1)) / total)
