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
    micro_average_precision: float = 0.0  # µAP of the pooled pairs


def _canonical(scores: jax.Array) -> jax.Array:
    """Float scores with NaN → -inf and -0.0 → 0.0, so that sorting matches numpy's ordering."""
    scores = jnp.asarray(scores)
    if not jnp.issubdtype(scores.dtype, jnp.floating):
        scores = scores.astype(jnp.float32)
    scores = jnp.where(jnp.isnan(scores), -jnp.inf, scores)
    return jnp.where(scores == 0, jnp.zeros_like(scores), scores)


@jax.jit
def _order_key(scores: jax.Array) -> jax.Array:
    """int32 keys ordered like the canonical float32 scores: a > b exactly when key(a) > key(b)."""
    bits = lax.bitcast_convert_type(_canonical(scores).astype(jnp.float32), jnp.int32)
    return jnp.where(bits < 0, bits ^ 0x7FFFFFFF, bits)


def _prepare(scores, relevance, mask, num_relevant, xp=jnp):
    """Relevance restricted to the mask, the mask, and the AP denominators (`xp`: jnp or np)."""
    mask = xp.ones(xp.shape(scores), bool) if mask is None else xp.asarray(mask, bool)
    relevance = xp.asarray(relevance, bool) & mask
    if num_relevant is None:
        num_relevant = relevance.sum(-1)
    return relevance, mask, xp.asarray(num_relevant, xp.int32)


def _ranked_relevance(scores: jax.Array, relevance: jax.Array, mask: jax.Array) -> jax.Array:
    """[Q, N] int32 0/1 relevance in ranked order; masked-out items go last with relevance 0."""
    invalid = (~mask).astype(jnp.int32)
    ranked = (relevance & mask).astype(jnp.int32)
    _, _, ranked = lax.sort((invalid, -_canonical(scores), ranked), is_stable=True, num_keys=2)
    return ranked


def _ranks(ranked: jax.Array) -> jax.Array:
    return jnp.arange(1, ranked.shape[-1] + 1, dtype=jnp.int32)


def _relevant_ranks(scores, relevance, mask) -> tuple[jax.Array, jax.Array]:
    """Ranks of the relevant masked-in items ([Q, N], ascending, then padding) and their count,
    from a full sort of every row."""
    ranked = _ranked_relevance(scores, relevance, mask)
    hits = jnp.cumsum(ranked, -1)
    rows = jnp.arange(ranked.shape[0])[:, None]
    slots = jnp.where(ranked > 0, hits - 1, ranked.shape[-1])
    ranks = jnp.zeros((ranked.shape[0], ranked.shape[-1] + 1), jnp.int32)
    ranks = ranks.at[rows, slots].set(_ranks(ranked)[None])[:, :-1]
    return ranks, hits[:, -1]


# ---------------------------------------------------------------------------------------------
# Every metric but the raw curve depends only on the ranks of the relevant items: the j-th
# relevant item (j = 1, 2, ...) at rank r_j contributes precision j / r_j.


def _hit_precision(ranks: jax.Array, found: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Precision at each relevant item ([Q, R], 0 on padding) and which slots are real."""
    valid = jnp.arange(ranks.shape[-1]) < found[..., None]
    hits = jnp.arange(1, ranks.shape[-1] + 1, dtype=jnp.float32)
    return jnp.where(valid, hits / jnp.maximum(ranks, 1), 0.0), valid


def _ap_from_ranks(ranks: jax.Array, found: jax.Array, num_relevant: jax.Array) -> jax.Array:
    precision, _ = _hit_precision(ranks, found)
    total = jnp.sum(precision, -1)
    return jnp.where(num_relevant > 0, total / jnp.maximum(num_relevant, 1), 0.0)


def _ap_at_k_from_ranks(
    ranks: jax.Array, found: jax.Array, num_relevant: jax.Array, k: int, denominator: Denominator
) -> jax.Array:
    precision, valid = _hit_precision(ranks, found)
    top = valid & (ranks <= k)
    total = jnp.sum(jnp.where(top, precision, 0.0), -1)
    if denominator == "hits":
        count = jnp.sum(top, -1)
    elif denominator == "min_k_relevant":
        count = jnp.minimum(num_relevant, k)
    else:
        raise ValueError(f"denominator must be 'hits' or 'min_k_relevant', got {denominator!r}")
    return jnp.where((num_relevant > 0) & (count > 0), total / jnp.maximum(count, 1), 0.0)


def _interpolated_from_ranks(
    ranks: jax.Array, found: jax.Array, num_relevant: jax.Array, num_levels: int
) -> jax.Array:
    """Max precision at recall ≥ level, levels 1/L..1; 0 where that recall is never reached.

    Precision peaks at relevant items, so the max over ranks from the first one reaching recall
    l / L is the max over relevant items from the j-th on, j = ceil(l R / L) (exact integers).
    """
    precision, _ = _hit_precision(ranks, found)
    best_from = lax.cummax(precision, axis=precision.ndim - 1, reverse=True)
    levels = jnp.arange(1, num_levels + 1, dtype=jnp.int32)
    first = (levels * num_relevant[..., None] + num_levels - 1) // num_levels - 1
    value = jnp.take_along_axis(best_from, jnp.clip(first, 0, ranks.shape[-1] - 1), axis=-1)
    reached = (num_relevant[..., None] > 0) & (first < found[..., None])
    return jnp.where(reached, value, 0.0)


@jax.jit
def average_precision(
    scores: jax.Array,
    relevance: jax.Array,
    mask: jax.Array | None = None,
    num_relevant: jax.Array | None = None,
) -> jax.Array:
    """[Q] average precision of each query (0 where it has no relevant item)."""
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant)
    return _ap_from_ranks(*_relevant_ranks(scores, relevance, mask), num_relevant)


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
    ranks, found = _relevant_ranks(scores, relevance, mask)
    return _ap_at_k_from_ranks(ranks, found, num_relevant, k, denominator)


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
    ranks, found = _relevant_ranks(scores, relevance, mask)
    return _interpolated_from_ranks(ranks, found, num_relevant, num_levels)


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


@jax.jit
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
    ap = _ap_from_ranks(*_relevant_ranks(scores, relevance, mask), num_relevant)
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
    ranks, found = _relevant_ranks(flat(scores), flat(relevance), flat(mask))
    return _ap_from_ranks(ranks, found, jnp.sum(num_relevant)[None])[0]


# ---------------------------------------------------------------------------------------------
# Chunked drivers: no sort of the database. The relevant (query, item) pairs — the "keys" — are
# put in pooled ranking order once (score descending, row-major pair index ascending). Each block
# of `chunk_size` queries then finds, for every masked-in pair p, the number of keys ranked at or
# before it, position(p), and counts pairs per (query, position): a key at pooled position t is
# preceded in its query by the pairs of that query with position ≤ t, and in the pool by all such
# pairs. position(p) comes from a lookup table on the score bits: the keys of earlier buckets,
# plus a direct count over the (at most `MAX_BUCKET_WIDTH`) keys of p's own bucket, gathered as
# one row (XLA:CPU is slow at gathers, and this needs three a pair: 3.5x faster than a search);
# when runs of tied relevant scores crowd a bucket, a binary search in the bucket instead.
# Cost O(Q N); memory a few [chunk_size, N] and [chunk_size, keys] arrays.

# Keys one lookup bucket may hold for the direct count (more: binary search in the bucket).
MAX_BUCKET_WIDTH = 16


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
    shapes = [np.shape(x) for x in (relevance, mask) if x is not None]
    if any(shape != scores.shape for shape in shapes):
        raise ValueError(f"scores {scores.shape}, relevance and mask {shapes} must match")
    relevance, mask, num_relevant = _prepare(scores, relevance, mask, num_relevant, xp=np)
    found = relevance.sum(-1)  # relevance is already restricted to the mask
    if num_relevant.shape != found.shape:
        raise ValueError(f"num_relevant must be [{len(found)}], got shape {num_relevant.shape}")
    if np.any(num_relevant < found):
        raise ValueError("num_relevant is smaller than the relevant items inside the mask")
    if scores.size >= np.iinfo(np.int32).max:
        raise ValueError(f"too many pairs for int32 indices: {scores.size}")
    return scores, relevance, mask, num_relevant


def _next_power_of_two(n: int, minimum: int = 1) -> int:
    return max(minimum, 1 << max(n - 1, 0).bit_length())


class _Keys(NamedTuple):
    """The relevant pairs in pooled ranking order, padded to a power of two, and a lookup table.

    A pair with order key K falls in bucket (key[0] - K) >> shift; the keys of bucket b are
    key[start[b]:start[b + 1]] (uint32 arithmetic; keys above key[0] or below key[count - 1]
    are handled apart), and, for the direct count, bucket_key[b] / bucket_flat[b].
    """

    key: np.ndarray  # [T] int32 `_order_key` of the score, descending
    flat: np.ndarray  # [T] int32 pair index q * N + n, ascending among equal keys
    tie_end: np.ndarray  # [T] int32 end of the run of equal keys each key is in
    count: int
    shift: int
    start: np.ndarray  # [M + 1] int32
    search_steps: int  # binary search steps for the largest bucket
    tie_steps: int  # ... and for the longest run of equal keys
    row_positions: np.ndarray  # [Q, Rmax] int32 pooled positions of each query's keys, ascending
    found: np.ndarray  # [Q] relevant pairs inside the mask
    # Direct count: [M, W] each bucket's keys (padding int32 min) and their pair indices (padding
    # int32 max); None when a bucket holds more than MAX_BUCKET_WIDTH keys (binary search).
    bucket_key: np.ndarray | None
    bucket_flat: np.ndarray | None


def _bucket_table(keys: np.ndarray, buckets_per_key: int) -> tuple[int, np.ndarray, np.ndarray]:
    """`shift`, each key's bucket and `start` [M + 1] of a table of about `buckets_per_key`
    buckets a key (a power of two, at least 1024) over the descending `keys`."""
    num_buckets = _next_power_of_two(buckets_per_key * len(keys), 1024)
    span = int(keys[0]) - int(keys[-1])
    shift = max(span.bit_length() - num_buckets.bit_length() + 1, 0)
    unsigned = keys.view(np.uint32)
    buckets = ((unsigned[0] - unsigned) >> np.uint32(shift)).astype(np.int64)
    return shift, buckets, np.searchsorted(buckets, np.arange(num_buckets + 1)).astype(np.int32)


def _pooled_keys(scores: np.ndarray, relevance: np.ndarray) -> _Keys:
    rows, cols = np.divmod(np.flatnonzero(relevance), relevance.shape[1])  # row-major order
    count = len(rows)
    size = _next_power_of_two(count, 64)
    values = np.zeros(size, np.float32)
    values[:count] = scores[rows, cols]
    keys = np.asarray(_order_key(values))[:count]
    flat = (rows * scores.shape[1] + cols).astype(np.int32)
    order = np.lexsort((flat, -keys.astype(np.int64)))
    keys, flat = keys[order], flat[order]
    tie_end = np.searchsorted(-keys.astype(np.int64), -keys.astype(np.int64), side="right")
    # Direct count: ~2 buckets a key (measured best of 1-8: the table stays in cache).
    shift, buckets, start = _bucket_table(keys, 2)
    width = int(np.diff(start).max())
    bucket_key = bucket_flat = None
    if width <= MAX_BUCKET_WIDTH:
        slot = np.arange(count) - start[buckets]
        bucket_key = np.full((len(start) - 1, width), np.iinfo(np.int32).min, np.int32)
        bucket_flat = np.full((len(start) - 1, width), np.iinfo(np.int32).max, np.int32)
        bucket_key[buckets, slot], bucket_flat[buckets, slot] = keys, flat
    else:  # binary search: finer buckets, fewer steps
        shift, _, start = _bucket_table(keys, 8)
    position = np.empty(count, np.int32)
    position[order] = np.arange(count)  # rows are grouped (row-major order)
    found = np.bincount(rows, minlength=len(scores))
    first = np.concatenate([[0], np.cumsum(found)[:-1]])
    by_row = np.lexsort((position, rows))
    row_positions = np.zeros((len(scores), _next_power_of_two(int(found.max()))), np.int32)
    row_positions[rows[by_row], np.arange(count) - first[rows[by_row]]] = position[by_row]
    pad = lambda x, value: np.concatenate([x, np.full(size - count, value, np.int32)])
    return _Keys(
        key=pad(keys, np.iinfo(np.int32).min),
        flat=pad(flat, np.iinfo(np.int32).max),
        tie_end=pad(tie_end.astype(np.int32), count),
        count=count,
        shift=shift,
        start=start,
        search_steps=int(np.diff(start).max()).bit_length(),
        tie_steps=int(np.max(tie_end - np.arange(count))).bit_length(),
        row_positions=row_positions,
        found=found,
        bucket_key=bucket_key,
        bucket_flat=bucket_flat,
    )


def _search(position, upper, steps, before):
    """Largest p in [position, upper] with before(t) true for t = position..p - 1 (`before` holds
    on a prefix), by `steps` halvings. A loop, not unrolled: XLA:CPU would fuse every earlier
    step (and the inputs) into the next and recompute them."""

    def halve(i, position):
        candidate = position + jnp.left_shift(1, steps - 1 - i)
        return jnp.where((candidate <= upper) & before(candidate - 1), candidate, position)

    return lax.fori_loop(0, steps, halve, position)


@functools.partial(jax.jit, static_argnames=("shift",))
def _pooled_positions(
    scores,
    mask,
    offset,
    key,
    flat,
    tie_end,
    count,
    start,
    bucket_key,
    bucket_flat,
    *,
    shift,
    search_steps,
    tie_steps,
):
    """[B, N] number of keys ranked at or before each pair (T + 1 for masked-out pairs)."""
    num_rows, size = scores.shape
    last = key.shape[0] - 1
    pair_key = _order_key(scores)
    pair = offset + jnp.arange(num_rows, dtype=jnp.int32)[:, None] * size + jnp.arange(size)
    top, bottom = key[0], key[jnp.maximum(count - 1, 0)]
    inside = (pair_key <= top) & (pair_key >= bottom)
    unsigned = lambda x: lax.bitcast_convert_type(x, jnp.uint32)
    bucket = (unsigned(top) - unsigned(pair_key)) >> shift
    bucket = jnp.where(inside, bucket, 0).astype(jnp.int32)
    lower = start[bucket]
    outside = lambda position: jnp.where(
        pair_key > top, 0, jnp.where(pair_key < bottom, count, position)
    )
    if bucket_key is not None:
        # Keys of the bucket with a strictly higher score, or equal with a lower pair index.
        k, f = bucket_key[bucket], bucket_flat[bucket]
        ahead = (k > pair_key[..., None]) | ((k == pair_key[..., None]) & (f <= pair[..., None]))
        position = outside(lower + jnp.sum(ahead, axis=-1, dtype=jnp.int32))
        return jnp.where(mask, position, key.shape[0] + 1)
    upper = jnp.where(inside, start[bucket + 1], lower)
    # Keys with a strictly higher score, then equal keys with a lower pair index.
    higher = _search(lower, upper, search_steps, lambda t: key[jnp.minimum(t, last)] > pair_key)
    higher = outside(higher)
    at = jnp.minimum(higher, last)
    tied_end = jnp.where((higher < count) & (key[at] == pair_key), tie_end[at], higher)
    position = _search(higher, tied_end, tie_steps, lambda t: flat[jnp.minimum(t, last)] <= pair)
    return jnp.where(mask, position, key.shape[0] + 1)


@functools.partial(
    jax.jit,
    static_argnames=("shift", "k", "denominator", "num_levels"),
)
def _block_metrics(
    scores,
    mask,
    offset,
    num_relevant,
    row_positions,
    found,
    keys,
    *,
    shift,
    search_steps,
    tie_steps,
    k,
    denominator,
    num_levels,
):
    """Per-query metrics of a block of queries and, per pooled key, the block's pairs before it."""
    position = _pooled_positions(
        scores, mask, offset, *keys, shift=shift, search_steps=search_steps, tie_steps=tie_steps
    )
    num_rows, num_keys = position.shape[0], keys[0].shape[0]
    bins = position + (num_keys + 2) * jnp.arange(num_rows, dtype=jnp.int32)[:, None]
    counts = jnp.zeros(num_rows * (num_keys + 2), jnp.int32).at[bins.reshape(-1)].add(1)
    # before[q, t]: pairs of query q ranked before the key at pooled position t (key excluded).
    before = jnp.cumsum(counts.reshape(num_rows, num_keys + 2)[:, :num_keys], axis=1)
    ranks = 1 + jnp.take_along_axis(before, row_positions, axis=1)
    ap_at_k = None if k is None else _ap_at_k_from_ranks(ranks, found, num_relevant, k, denominator)
    return (
        _ap_from_ranks(ranks, found, num_relevant),
        _interpolated_from_ranks(ranks, found, num_relevant, num_levels),
        ap_at_k,
        jnp.sum(before, 0),
    )


# `chunk_size="auto"`: blocks of about this many pairs (a few 16 MiB arrays), in a multiple of 8
# rows (XLA:CPU spreads an odd-sized block over fewer threads: 15 rows ran at half 16's speed).
PAIRS_PER_BLOCK = 1 << 22


def _query_blocks(
    num_queries: int, num_items: int, chunk_size: int | str | None
) -> tuple[int, range]:
    if chunk_size == "auto":
        chunk_size = max(8, PAIRS_PER_BLOCK // max(num_items, 1) // 8 * 8)
    size = num_queries if chunk_size is None else max(1, min(chunk_size, num_queries))
    return size, range(0, num_queries, size)


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return x if len(x) == rows else np.pad(x, [(0, rows - len(x))] + [(0, 0)] * (x.ndim - 1))


def chunked_query_metrics(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None = None,
    num_relevant: np.ndarray | None = None,
    *,
    k: int | None = None,
    denominator: Denominator = "hits",
    num_levels: int = NUM_RECALL_LEVELS,
    chunk_size: int | str | None = "auto",
) -> QueryMetrics:
    """AP, interpolated precision, (if k) AP@k for every query, and µAP, `chunk_size` queries at
    a time, without sorting the database.

    Peak memory is a few [chunk_size, N] and [chunk_size, relevant pairs] arrays (chunk_size=None:
    all queries at once; "auto": about `PAIRS_PER_BLOCK` pairs a block).
    """
    scores, relevance, mask, num_relevant = _host_inputs(scores, relevance, mask, num_relevant)
    if k is not None and denominator not in ("hits", "min_k_relevant"):
        raise ValueError(f"denominator must be 'hits' or 'min_k_relevant', got {denominator!r}")
    num_queries, size = scores.shape
    if not relevance.any():
        zeros = np.zeros(num_queries, np.float32)
        ap_at_k = None if k is None else zeros
        interpolated = np.zeros((num_queries, num_levels), np.float32)
        return QueryMetrics(zeros, interpolated, num_relevant, ap_at_k, 0.0)
    keys = _pooled_keys(scores, relevance)
    table = tuple(
        None if x is None else jnp.asarray(x)
        for x in (*keys[:3], keys.count, keys.start, keys.bucket_key, keys.bucket_flat)
    )
    steps = dict(search_steps=np.int32(keys.search_steps), tie_steps=np.int32(keys.tie_steps))
    rows, starts = _query_blocks(num_queries, size, chunk_size)
    outputs, before = [], np.zeros(len(keys.key), np.int64)
    for start in starts:
        block = slice(start, start + rows)
        inputs = [
            _pad_rows(x[block], rows)
            for x in (scores, mask, num_relevant, keys.row_positions, keys.found)
        ]
        *out, pooled = _block_metrics(
            *inputs[:2],
            np.int32(start * size),
            *inputs[2:],
            table,
            shift=keys.shift,
            **steps,
            k=k,
            denominator=denominator,
            num_levels=num_levels,
        )
        outputs.append([None if o is None else np.asarray(o)[: num_queries - start] for o in out])
        before += np.asarray(pooled)
    ap, interpolated, ap_at_k = (
        None if parts[0] is None else np.concatenate(parts) for parts in zip(*outputs, strict=True)
    )
    total = int(num_relevant.sum())
    hits = np.arange(1, keys.count + 1)
    micro = float(np.sum(hits / (before[: keys.count] + 1)) / total)
    return QueryMetrics(ap, interpolated, num_relevant, ap_at_k, micro)


def chunked_micro_average_precision(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray | None = None,
    num_relevant: np.ndarray | None = None,
    *,
    chunk_size: int | str | None = "auto",
) -> float:
    """µAP equal to `micro_average_precision`, computed on blocks of `chunk_size` queries (the
    pass of `chunked_query_metrics`, which also returns it)."""
    return chunked_query_metrics(
        scores, relevance, mask, num_relevant, chunk_size=chunk_size
    ).micro_average_precision
