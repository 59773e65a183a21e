"""Binary codes: binarise, pack into uint32 words, Hamming distances and chunked, sharded top-k.

Bit layout: bit j of a code is bit (j % 32) of word j // 32, least significant first, i.e. the
order of `np.packbits(bits, bitorder="little").view("<u4")`; codes are zero-padded to whole words
(padding bits are equal in every code, so they never add to a distance).

Top-k ranks by Hamming distance ascending; ties go to the lower database index, the order of
`np.argsort(distances, kind="stable")`. The database is scanned in chunks of fixed shape, so memory
is independent of its size; with a mesh its rows are split over the data axis
(`ndvr_jax.sharding`), each device scans its block and the per-device lists are merged.
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh
from jax.sharding import PartitionSpec as P

from ndvr_jax import sharding

WORD_BITS = 32
BLOCK = 8  # database rows per block of the top-k merge; chunks are whole blocks
BLOCK_TIERS = (8, 32, 128)  # blocks per query that the cheaper merges take
_FAR = np.iinfo(np.int32).max


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
    """The k nearest of a sorted best list and later rows (ascending index among equal
    distances): a stable sort by distance keeps ties in index order."""
    distance, index = lax.sort(
        (jnp.concatenate([best, distance], 1), jnp.concatenate([best_index, index], 1)),
        dimension=1,
        is_stable=True,
        num_keys=1,
    )
    return distance[:, :k], index[:, :k]


def _merge_blocks(best, best_index, distance_blocks, hit, chunk_start, k, max_blocks):
    """Merges the (at most `max_blocks` per query) blocks marked in `hit` [Q, blocks]."""
    rows, blocks = hit.shape
    count = jnp.sum(hit, axis=1, keepdims=True)
    slot = jnp.where(hit, jnp.cumsum(hit, axis=1, dtype=jnp.int32) - 1, max_blocks)
    picked = jnp.zeros((rows, max_blocks + 1), jnp.int32)
    picked = picked.at[jnp.arange(rows)[:, None], slot].set(
        jnp.broadcast_to(jnp.arange(blocks, dtype=jnp.int32), hit.shape), mode="drop"
    )[:, :max_blocks]
    real = jnp.arange(max_blocks) < count
    distance = jnp.take_along_axis(distance_blocks, picked[..., None], axis=1)
    distance = jnp.where(real[..., None], distance, _FAR)
    index = chunk_start + picked[..., None] * BLOCK + jnp.arange(BLOCK, dtype=jnp.int32)
    flat = lambda x: x.reshape(rows, max_blocks * BLOCK)
    return _merge(best, best_index, flat(distance), flat(index), k)


def _merge_chunk(best, best_index, distance, chunk_start, k):
    """Merges a chunk's [Q, C] distances into the best lists, sorting only what can matter.

    Only blocks of BLOCK columns whose minimum is below a query's current k-th distance can
    change its list (ties at that distance have higher indices than the list's). Once the lists
    fill, few blocks qualify: the smallest tier of `BLOCK_TIERS` that holds every query's
    blocks is merged, or the whole chunk when none does.
    """
    rows, blocks = distance.shape[0], distance.shape[1] // BLOCK
    distance_blocks = distance.reshape(rows, blocks, BLOCK)
    hit = jnp.min(distance_blocks, axis=-1) < best[:, -1:]
    tiers = [t for t in BLOCK_TIERS if t < blocks]
    merges = [
        functools.partial(
            _merge_blocks, best, best_index, distance_blocks, hit, chunk_start, k, tier
        )
        for tier in tiers
    ]
    index = chunk_start + jnp.arange(distance.shape[1], dtype=jnp.int32)
    merges.append(
        lambda: _merge(best, best_index, distance, jnp.broadcast_to(index, distance.shape), k)
    )
    most = jnp.max(jnp.sum(hit, axis=1))
    return lax.switch(jnp.sum(most > jnp.array(tiers, jnp.int32)), merges)


def _scan_top_k(queries, database, first_row, num_database, k, chunk_size):
    """Nearest k of `database` rows [first_row, first_row + len): (distance, index)."""
    chunks = database.reshape(-1, chunk_size, database.shape[-1])

    def step(carry, inputs):
        chunk, chunk_start = inputs
        index = chunk_start + jnp.arange(chunk_size, dtype=jnp.int32)
        distance = hamming_distances(queries, chunk)
        distance = jnp.where((index < num_database)[None, :], distance, _FAR)
        return _merge_chunk(*carry, distance, chunk_start, k), None

    starts = first_row + chunk_size * jnp.arange(len(chunks), dtype=jnp.int32)
    init = (
        jnp.full((queries.shape[0], k), _FAR, jnp.int32),
        jnp.full((queries.shape[0], k), _FAR, jnp.int32),
    )
    return lax.scan(step, init, (chunks, starts))[0]


@functools.partial(jax.jit, static_argnames=("k", "chunk_size", "mesh"))
def _search_block(queries, database, num_database, *, k, chunk_size, mesh):
    scan = functools.partial(_scan_top_k, num_database=num_database, k=k, chunk_size=chunk_size)
    if mesh is None:
        return scan(queries, database, jnp.int32(0))
    axis = sharding.DATA_AXIS

    def per_device(queries, rows):
        first_row = lax.axis_index(axis).astype(jnp.int32) * rows.shape[0]
        best, best_index = scan(queries, rows, first_row)
        best = lax.all_gather(best, axis, axis=1, tiled=True)
        best_index = lax.all_gather(best_index, axis, axis=1, tiled=True)
        return _merge(best[:, :0], best_index[:, :0], best, best_index, k)

    return jax.shard_map(
        per_device, mesh=mesh, in_specs=(P(), P(axis)), out_specs=P(), check_vma=False
    )(queries, database)


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
    rows (rounded up to whole blocks of `BLOCK`), both padded so that a search compiles once per
    shape. With `mesh`, database rows are
    split over its data axis and each device scans its part.
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
    chunk_size = BLOCK * max(1, math.ceil(chunk_size / BLOCK))
    rows = math.ceil(num_database / (devices * chunk_size)) * devices * chunk_size
    database = np.pad(database, [(0, rows - num_database), (0, 0)])
    database = jax.device_put(database, None if mesh is None else sharding.batch_sharded(mesh))
    block = max(1, min(query_chunk_size, len(queries)))
    search = functools.partial(
        _search_block, num_database=num_database, k=k, chunk_size=chunk_size, mesh=mesh
    )
    distances, indices = [], []
    for start in range(0, len(queries), block):
        part = queries[start : start + block]
        best, best_index = search(np.pad(part, [(0, block - len(part)), (0, 0)]), database)
        distances.append(np.asarray(best)[: len(part)])
        indices.append(np.asarray(best_index)[: len(part)])
    return HammingTopK(np.concatenate(distances), np.concatenate(indices))
