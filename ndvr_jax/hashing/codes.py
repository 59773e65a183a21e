"""Binary codes: binarise, pack into uint32 words, Hamming distances and chunked, sharded top-k.

Bit layout: bit j of a code is bit (j % 32) of word j // 32, least significant first, i.e. the
order of `np.packbits(bits, bitorder="little").view("<u4")`; codes are zero-padded to whole words
(padding bits are equal in every code, so they never add to a distance).

Top-k ranks by Hamming distance ascending; ties go to the lower database index, the order of
`np.argsort(distances, kind="stable")`, exactly. The database is kept word-major ([W, N], so the
XOR + popcount pass is vectorised over database rows) and scanned in chunks of fixed shape; what
a pass keeps is one int16 minimum per block of `BLOCK` rows. With a mesh its rows are split over
the data axis (`ndvr_jax.sharding`), each device scans its part and the per-device lists are
merged.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from ndvr_jax import sharding

WORD_BITS = 32
BLOCK = 16  # database rows per block of the top-k selection
GROUP = 64  # blocks per group; database chunks are whole groups


class HammingTopK(NamedTuple):
    """Nearest `k` database codes per query, nearest first (numpy arrays)."""

    distance: np.ndarray  # [Q, k] int32 Hamming distance
    index: np.ndarray  # [Q, k] int32 database row


def num_words(num_bits: int) -> int:
    """uint32 words per packed code of `num_bits` bits."""
    return math.ceil(num_bits / WORD_BITS)


def binarize(probabilities: jax.Array, threshold: float = 0.5) -> jax.Array:
    """bool bits: probability (sigmoid output) >= threshold."""
    return jnp.asarray(probabilities) >= threshold


@jax.jit
def pack_bits(bits: jax.Array) -> jax.Array:
    """[..., n] bits (bool or 0/1) -> [..., ceil(n / 32)] uint32 words."""
    bits = jnp.asarray(bits) != 0
    n = bits.shape[-1]
    pad = num_words(n) * WORD_BITS - n
    bits = jnp.pad(bits, [(0, 0)] * (bits.ndim - 1) + [(0, pad)])
    bits = bits.reshape(*bits.shape[:-1], -1, WORD_BITS).astype(jnp.uint32)
    shifts = jnp.arange(WORD_BITS, dtype=jnp.uint32)
    return jnp.sum(bits << shifts, axis=-1, dtype=jnp.uint32)


@jax.jit
def hamming_distances(queries: jax.Array, database: jax.Array) -> jax.Array:
    """[Q, N] int32 Hamming distances of [Q, W] and [N, W] packed codes (XOR + popcount)."""
    xor = jnp.bitwise_xor(queries[:, None, :], database[None, :, :])
    return jnp.sum(lax.population_count(xor).astype(jnp.int32), axis=-1)


def _merge(best, best_index, distance, index, k):
    """The k nearest of two lists (ascending index among equal distances in each, the first
    list's indices below the second's): a stable sort by distance keeps ties in index order."""
    distance, index = lax.sort(
        (jnp.concatenate([best, distance], 1), jnp.concatenate([best_index, index], 1)),
        dimension=1,
        is_stable=True,
        num_keys=1,
    )
    return distance[:, :k], index[:, :k]


def _word_major_distances(queries: jax.Array, codes_t: jax.Array) -> jax.Array:
    """int32 Hamming distances of `queries` [Q, W] to word-major codes `codes_t` [W, Q or 1, M]:
    [Q, M], one elementwise XOR + popcount per word, vectorised over the M codes."""
    return sum(
        lax.population_count(queries[:, w, None] ^ codes_t[w]) for w in range(queries.shape[1])
    ).astype(jnp.int32)


def _select(values: jax.Array, k: int, max_value: int) -> jax.Array:
    """Positions [Q, k] (ascending) of the k smallest entries of each row of the int32
    `values` [Q, M] (all <= `max_value`), ties to the lower position, without a sort.

    The k-th smallest value t comes from bisecting counts; every entry below t is taken, and
    the first (k - below) entries equal to t; the j-th taken one is found by binary search in
    the running count of taken entries.
    """
    rows = values.shape[0]

    def bisect(_, bounds):
        low, high = bounds
        middle = (low + high) // 2
        enough = jnp.sum(values <= middle[:, None], axis=1, dtype=jnp.int32) >= k
        return jnp.where(enough, low, middle + 1), jnp.where(enough, middle, high)

    steps = max(1, math.ceil(math.log2(max_value + 1)))
    bounds = (jnp.zeros(rows, jnp.int32), jnp.full(rows, max_value, jnp.int32))
    threshold = lax.fori_loop(0, steps, bisect, bounds)[1][:, None]
    below = values < threshold
    counts = jnp.cumsum(jnp.stack([below, values == threshold]).astype(jnp.int32), axis=2)
    room = k - counts[0, :, -1:]
    taken = counts[0] + jnp.minimum(counts[1], room)
    wanted = jnp.arange(1, k + 1, dtype=jnp.int32)
    return jax.vmap(lambda row: jnp.searchsorted(row, wanted))(taken).astype(jnp.int32)


def _scan_top_k(queries, database_t, first_row, num_database, k, chunk_size):
    """Nearest k (at most N) of the rows [first_row, first_row + N) of the word-major database
    `database_t` [W, N]: (distance, index), exact, ties to the lower index.

    One pass computes every distance but keeps only minima: per block of `BLOCK` rows and per
    group of `GROUP` blocks. The k nearest rows lie in the k blocks of smallest minimum (ties to
    the lower block), and those in the k groups of smallest minimum: groups, then blocks, then
    rows are selected by `_select` on ever smaller sets, and the k rows are sorted last.
    """
    words, rows = database_t.shape
    far, k = words * WORD_BITS + 1, min(k, rows)  # a device's part may hold fewer than k
    chunks = database_t.reshape(words, rows // chunk_size, chunk_size).transpose(1, 0, 2)
    num_queries = queries.shape[0]

    def step(_, inputs):
        chunk, chunk_start = inputs
        distance = _word_major_distances(queries, chunk[:, None, :])
        real = chunk_start + jnp.arange(chunk_size, dtype=jnp.int32) < num_database
        distance = jnp.where(real[None, :], distance, far)
        blocks = jnp.min(distance.reshape(num_queries, -1, BLOCK), axis=2)
        groups = jnp.min(blocks.reshape(num_queries, -1, GROUP), axis=2)
        return None, (blocks.astype(jnp.int16), groups)

    starts = first_row + chunk_size * jnp.arange(len(chunks), dtype=jnp.int32)
    blocks, groups = lax.scan(step, None, (chunks, starts))[1]
    blocks = jnp.moveaxis(blocks, 0, 1).reshape(num_queries, -1, GROUP)  # [Q, groups, GROUP]
    groups = jnp.moveaxis(groups, 0, 1).reshape(num_queries, -1)  # [Q, groups]

    group = _select(groups, min(k, groups.shape[1]), far)
    block_min = jnp.take_along_axis(blocks, group[..., None], axis=1).astype(jnp.int32)
    block_id = group[..., None] * GROUP + jnp.arange(GROUP, dtype=jnp.int32)
    flat = lambda x: x.reshape(num_queries, -1)
    picked = _select(flat(block_min), min(k, block_min[0].size), far)
    block_id = jnp.take_along_axis(flat(block_id), picked, axis=1)
    row = flat(block_id[..., None] * BLOCK + jnp.arange(BLOCK, dtype=jnp.int32))
    distance = _word_major_distances(queries, database_t[:, row])
    distance = jnp.where(row < num_database - first_row, distance, far)
    picked = _select(distance, k, far)
    distance = jnp.take_along_axis(distance, picked, axis=1)
    row = jnp.take_along_axis(row, picked, axis=1) + first_row
    return lax.sort((distance, row), dimension=1, is_stable=True, num_keys=1)


@functools.partial(jax.jit, static_argnames=("k", "chunk_size", "mesh"))
def _search_block(queries, database_t, num_database, *, k, chunk_size, mesh):
    scan = functools.partial(_scan_top_k, num_database=num_database, k=k, chunk_size=chunk_size)
    if mesh is None:
        return scan(queries, database_t, jnp.int32(0))
    axis = sharding.DATA_AXIS

    def per_device(queries, rows):
        first_row = lax.axis_index(axis).astype(jnp.int32) * rows.shape[1]
        best, best_index = scan(queries, rows, first_row)
        best = lax.all_gather(best, axis, axis=1, tiled=True)
        best_index = lax.all_gather(best_index, axis, axis=1, tiled=True)
        return _merge(best[:, :0], best_index[:, :0], best, best_index, k)

    return jax.shard_map(
        per_device, mesh=mesh, in_specs=(P(), P(None, axis)), out_specs=P(), check_vma=False
    )(queries, database_t)


def hamming_top_k(
    queries: np.ndarray,
    database: np.ndarray,
    k: int,
    *,
    chunk_size: int = 8192,
    query_chunk_size: int = 256,
    mesh: Mesh | None = None,
) -> HammingTopK:
    """The k database codes nearest to each query code ([Q, W], [N, W] packed uint32).

    Queries go through in blocks of `query_chunk_size`, the database in chunks of `chunk_size`
    rows (rounded up to whole groups of `GROUP` blocks of `BLOCK` rows), both padded so that a
    search compiles once per shape. With `mesh`, database rows are split over its data axis and
    each device scans its part.
    """
    queries = np.asarray(queries, np.uint32)
    database = np.asarray(database, np.uint32)
    if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
        raise ValueError(f"need [Q, W] and [N, W] codes, got {queries.shape} and {database.shape}")
    if not 1 <= k <= len(database):
        raise ValueError(f"k must be in [1, {len(database)}], got {k}")
    num_database = len(database)
    devices = 1 if mesh is None else sharding.data_parallel_size(mesh)
    chunk_size = min(chunk_size, math.ceil(num_database / devices))
    group_rows = BLOCK * GROUP
    chunk_size = group_rows * max(1, math.ceil(chunk_size / group_rows))
    rows = math.ceil(num_database / (devices * chunk_size)) * devices * chunk_size
    database_t = np.pad(database, [(0, rows - num_database), (0, 0)]).T  # [W, rows]
    placement = None if mesh is None else NamedSharding(mesh, P(None, sharding.DATA_AXIS))
    database_t = jax.device_put(np.ascontiguousarray(database_t), placement)
    block = max(1, min(query_chunk_size, len(queries)))
    search = functools.partial(
        _search_block, num_database=num_database, k=k, chunk_size=chunk_size, mesh=mesh
    )
    distances, indices = [], []
    for start in range(0, len(queries), block):
        part = queries[start : start + block]
        best, best_index = search(np.pad(part, [(0, block - len(part)), (0, 0)]), database_t)
        distances.append(np.asarray(best)[: len(part)])
        indices.append(np.asarray(best_index)[: len(part)])
    return HammingTopK(np.concatenate(distances), np.concatenate(indices))
