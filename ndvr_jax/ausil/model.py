"""AuSiL: audio similarity learning between two videos' segment features (Avgoustinakis et al.).

Per segment (2,528-d MAC of the audio CNN): L2 → PCA whitening `(x − mean) @ W` → L2 → attention
`w = x·u/2 + 0.5`, `x ← w·x`. Per pair: similarity matrix `Q·Pᵀ` → comparator CNN (pad 1
symmetric, conv3×3 32 ReLU, maxpool 2, pad, conv3×3 64 ReLU, maxpool 2, pad, conv3×3 128 ReLU,
conv1×1 1) → clip to [−1, 1] → Chamfer (max over the database axis, mean over the query axis).
Videos shorter than 10 segments are concatenated with themselves until they have at least 10, as
the original does (it did so for database videos; here both sides, so short queries work too).

Batching convention: a batch holds B pairs; queries `[B, N, D]` with `q_len [B]`, database
videos `[B, M, D]` with `p_len [B]`, rows past a video's length being padding (any finite values;
`pack_videos` writes zeros). One compiled function serves every length up to (N, M):

* Width-1 symmetric padding equals repeating the edge row/column, so each comparator layer pads
  its input so that the row/column just past a pair's valid region is a copy of its last valid
  row/column, exactly what padding the unpadded matrix would give. The first layer's padding is
  done on the segments before the similarity matrix (a repeated segment is a repeated row or
  column); the others with float masks, multiplies and zero pads only (see `_edge_pad`).
* A valid output cell of a 3×3 valid conv reads only those cells, and a 2×2/stride-2 pool keeps
  `len // 2` valid cells, so the valid region of every layer equals the unpadded computation;
  after the comparator it is `(q_len // 4, p_len // 4)`.
* Chamfer takes the max over valid columns only (others replaced by the dtype's lowest value) and
  the mean over valid rows only. Padded cells hold finite garbage (zeroed by multiplication
  before each padding, hence "finite") that no valid value (nor its gradient) depends on.

Speed on CPU: XLA:CPU hands chains of convolutions, pads, pools, reductions and float
elementwise ops to YNNPACK as one fused kernel, but not selects, integer compares or
concatenations of slices; everything in the comparator from the first convolution to the 1×1
one is written with the former, so it compiles into one kernel (≈2× faster than with the padding
as separate loops).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from ndvr_jax.backbones.audio_cnn import FEATURE_DIM
from ndvr_jax.io.atomic import save_npz_atomic

MIN_SEGMENTS = 10
_EPS = 1e-15  # as the original's tf.nn.l2_normalize(epsilon=1e-15)


def _l2_normalize(x: jax.Array) -> jax.Array:
    # x / sqrt(max(‖x‖², eps)): finite gradient at zero vectors (padding rows).
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), _EPS))


# ---------------------------------------------------------------------------------------------
# PCA whitening


@dataclasses.dataclass(frozen=True)
class PCAWhitening:
    """`(x − mean) @ weights`; `weights` `[D, K]` are eigenvectors scaled by 1/sqrt(eigenvalue)."""

    mean: np.ndarray
    weights: np.ndarray

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Whitens `[..., D]` → `[..., K]` (numpy; the model applies the same in JAX)."""
        return (np.asarray(x, np.float32) - self.mean) @ self.weights

    def save(self, path: str | os.PathLike) -> None:
        """Writes `.npz` with arrays `mean` and `weights` (atomically)."""
        save_npz_atomic(path, mean=self.mean, weights=self.weights)

    @classmethod
    def load(cls, path: str | os.PathLike) -> PCAWhitening:
        """Reads what `save` wrote."""
        with np.load(path) as data:
            return cls(data["mean"].astype(np.float32), data["weights"].astype(np.float32))


def fit_pca_whitening(
    features: np.ndarray, n_components: int | None = None, eps: float = 1e-5, chunk: int = 65536
) -> PCAWhitening:
    """Fits whitening on segment features `[N, D]` (each row is L2-normalised first, as AuSiL).

    The sample covariance (divided by N − 1) is accumulated in float64 over chunks of rows (so a
    memory-mapped array works), then eigen-decomposed (`eigh`); components come in decreasing
    variance; `eps` is added to the eigenvalues before the inverse square root.
    """
    n, dims = features.shape
    if n < 2:
        raise ValueError("PCA whitening needs at least 2 segment features")
    total, gram = np.zeros(dims), np.zeros((dims, dims))
    for start in range(0, n, chunk):
        x = np.asarray(features[start : start + chunk], np.float64)
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.sqrt(_EPS))
        total += x.sum(axis=0)
        gram += x.T @ x
    mean = total / n
    covariance = (gram - n * np.outer(mean, mean)) / (n - 1)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    order = np.argsort(eigenvalues)[::-1][: n_components or dims]
    weights = eigenvectors[:, order] / np.sqrt(np.maximum(eigenvalues[order], 0.0) + eps)
    return PCAWhitening(mean.astype(np.float32), weights.astype(np.float32))


# ---------------------------------------------------------------------------------------------
# Packing videos into fixed-length buckets


def repeat_to_min_length(features: np.ndarray, min_length: int = MIN_SEGMENTS) -> np.ndarray:
    """Concatenates a video's segments with themselves until there are at least `min_length`."""
    if features.shape[0] == 0:
        raise ValueError("a video with no segments cannot be compared (no audio?)")
    while features.shape[0] < min_length:
        features = np.concatenate([features, features])
    return features


def bucket_length(n: int, min_bucket: int = 16) -> int:
    """The padded length used for `n` segments: the next power of two, at least `min_bucket`."""
    return max(min_bucket, 1 << max(0, n - 1).bit_length())


def pack_videos(
    videos: Sequence[np.ndarray], length: int | None = None, min_length: int = MIN_SEGMENTS
) -> tuple[np.ndarray, np.ndarray]:
    """Repeats short videos, zero-pads all to one length → (`[B, L, D]` float32, lengths int32).

    `length` defaults to `bucket_length` of the longest (repeated) video.
    """
    if not videos:
        raise ValueError("pack_videos needs at least one video")
    repeated = [repeat_to_min_length(np.asarray(v, np.float32), min_length) for v in videos]
    lengths = np.array([v.shape[0] for v in repeated], np.int32)
    length = bucket_length(int(lengths.max())) if length is None else length
    if lengths.max() > length:
        raise ValueError(f"a video has {lengths.max()} segments, more than length {length}")
    packed = np.zeros((len(repeated), length, repeated[0].shape[1]), np.float32)
    for i, v in enumerate(repeated):
        packed[i, : v.shape[0]] = v
    return packed, lengths


# ---------------------------------------------------------------------------------------------
# Comparator and Chamfer similarity


def _pad_masks(n: int, lengths: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Float 0/1 masks of an axis of `n` cells with valid lengths `lengths` `[B]`: `valid`
    `[B, n]` (cell < length), and over the padded axis `first` `[1, n + 2]` (index 0) and `after`
    `[B, n + 2]` (index length + 1, the pad just past the valid region)."""
    padded = jnp.arange(n + 2)[None, :]
    valid = (jnp.arange(n)[None, :] < lengths[:, None]).astype(jnp.float32)
    return (
        valid,
        (padded == 0).astype(jnp.float32),
        (padded == lengths[:, None] + 1).astype(jnp.float32),
    )


def _edge_pad_axis(x: jax.Array, axis: int, first: jax.Array, after: jax.Array) -> jax.Array:
    """Width-1 edge padding of the valid region along `axis` of `x` (zero past that region).

    Sum of three zero-padded shifts, each nonzero only where its mask is: `x` itself, `x[0]` at
    the first index, `x[len − 1]` at index `len + 1`. Every sum has one nonzero term, so exact.
    """

    def shifted(low: int) -> jax.Array:
        widths = [(0, 0)] * x.ndim
        widths[axis] = (low, 2 - low)
        return jnp.pad(x, widths)

    return shifted(1) + first * shifted(0) + after * shifted(2)


def _edge_pad(x: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """`[B, H, W, C]` → `[B, H + 2, W + 2, C]`: width-1 symmetric padding of each valid region.

    Cells past the valid region are zeroed (padding holds finite garbage: garbage × 0 = 0), then
    each axis is edge-padded by `_edge_pad_axis`: only zero pads, multiplies and adds with float
    masks, which stay inside the comparator's fused kernel (see the module docstring).
    """
    valid_r, first_r, after_r = _pad_masks(x.shape[1], rows)
    valid_c, first_c, after_c = _pad_masks(x.shape[2], cols)
    x = x * valid_r[:, :, None, None] * valid_c[:, None, :, None]
    x = _edge_pad_axis(x, 1, first_r[:, :, None, None], after_r[:, :, None, None])
    return _edge_pad_axis(x, 2, first_c[:, None, :, None], after_c[:, None, :, None])


def _edge_pad_segments(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """`[..., L, K]` → `[..., L + 2, K]`: each video's valid segments with its first and last
    one repeated once; the rows past that repeat the last one."""
    n = x.shape[-2]
    index = jnp.minimum(jnp.arange(-1, n + 1), jnp.asarray(lengths)[..., None] - 1)
    return jnp.take_along_axis(x, jnp.clip(index, 0, n - 1)[..., None], axis=-2)


def _conv(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    """A 3×3 layer's VALID convolution without its bias (added after pooling)."""
    kernel = conv.kernel[...]
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
    )


def _max_pool(x: jax.Array) -> jax.Array:
    return nnx.max_pool(x, window_shape=(2, 2), strides=(2, 2), padding="VALID")


class PairOutput(NamedTuple):
    """Per pair: Chamfer similarity `[B]`, comparator output before clipping `[B, N/4, M/4]`, and
    the valid rows/columns of that output `[B]`."""

    similarity: jax.Array
    raw: jax.Array
    rows: jax.Array
    cols: jax.Array


def masked_chamfer(sim: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Chamfer similarity `[B]` of `[B, N, M]` over the valid `rows × cols` top-left block."""
    col_valid = jnp.arange(sim.shape[2])[None, None, :] < cols[:, None, None]
    row_valid = jnp.arange(sim.shape[1])[None, :] < rows[:, None]
    row_max = jnp.max(jnp.where(col_valid, sim, jnp.finfo(sim.dtype).min), axis=2)
    total = jnp.sum(jnp.where(row_valid, row_max, 0.0), axis=1)
    return total / jnp.maximum(rows, 1).astype(sim.dtype)


class VideoComparator(nnx.Module):
    """The 4-layer CNN that refines a segment-similarity matrix."""

    def __init__(self, *, rngs: nnx.Rngs):
        init = nnx.initializers.glorot_uniform()  # Keras Conv2D's default, as the original
        conv = lambda c_in, c_out, k: nnx.Conv(
            c_in, c_out, (k, k), padding="VALID", kernel_init=init, rngs=rngs
        )
        self.conv1 = conv(1, 32, 3)
        self.conv2 = conv(32, 64, 3)
        self.conv3 = conv(64, 128, 3)
        self.fconv = conv(128, 1, 1)

    def __call__(
        self, sim: jax.Array, rows: jax.Array, cols: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """`[B, N, M]` with valid sizes `rows`, `cols` → raw output `[B, N//4, M//4]`, its sizes."""
        return self.from_padded(_edge_pad(sim[..., None], rows, cols)[..., 0], rows, cols)

    def from_padded(
        self, padded: jax.Array, rows: jax.Array, cols: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """As `__call__`, given the similarity matrix already edge-padded: `[B, N + 2, M + 2]`.

        Pooling comes before the bias and ReLU (exact: both are monotonic, so they commute with
        max), on a quarter of the cells; the 1×1 conv to one channel is a product summed over
        channels (a one-column matmul would leave the fused kernel).
        """
        conv_pool_relu = lambda conv, x: jax.nn.relu(_max_pool(_conv(conv, x)) + conv.bias[...])
        x = conv_pool_relu(self.conv1, padded[..., None])
        rows, cols = rows // 2, cols // 2
        x = conv_pool_relu(self.conv2, _edge_pad(x, rows, cols))
        rows, cols = rows // 2, cols // 2
        x = jax.nn.relu(_conv(self.conv3, _edge_pad(x, rows, cols)) + self.conv3.bias[...])
        raw = jnp.sum(x * self.fconv.kernel[...][0, 0, :, 0], axis=-1) + self.fconv.bias[...][0]
        return raw, rows, cols


# ---------------------------------------------------------------------------------------------
# The model

CPU_CHUNK_CELLS = 16384  # similarity-matrix cells per `lax.map` step on CPU (4 pairs of 64×64)


def default_micro_batch(rows: int, cols: int) -> int:
    """Pairs of `rows × cols` segments that `AuSiL.compare` runs at a time by default: on CPU
    about `CPU_CHUNK_CELLS` cells (at least 2 pairs), so that a chunk's comparator buffers stay
    in cache (64×64 pairs: ≈2.5× faster than the whole batch at once); on accelerators all of
    them (0)."""
    if jax.default_backend() != "cpu":
        return 0
    return max(2, CPU_CHUNK_CELLS // (rows * cols))


class Whitening(nnx.Variable):
    """Fitted PCA statistics: part of the model's state, never trained."""


class AuSiL(nnx.Module):
    """Segment embedding (whitening + attention) and the comparator, batched over pairs."""

    def __init__(self, dims: int = FEATURE_DIM, pca_dims: int | None = None, *, rngs: nnx.Rngs):
        pca_dims = pca_dims or dims
        self.pca_mean = Whitening(jnp.zeros((dims,), jnp.float32))
        self.pca_weights = Whitening(jnp.eye(dims, pca_dims, dtype=jnp.float32))
        context = nnx.initializers.glorot_uniform()(rngs.params(), (pca_dims, 1))
        self.attention = nnx.Param(context[:, 0])
        self.comparator = VideoComparator(rngs=rngs)

    def set_whitening(self, pca: PCAWhitening) -> None:
        """Loads fitted whitening statistics (shapes must match the model's)."""
        if pca.weights.shape != self.pca_weights.shape:
            raise ValueError(f"whitening {pca.weights.shape} vs model {self.pca_weights.shape}")
        self.pca_mean.set_value(jnp.asarray(pca.mean, jnp.float32))
        self.pca_weights.set_value(jnp.asarray(pca.weights, jnp.float32))

    def embed(self, x: jax.Array) -> jax.Array:
        """Segment features `[..., D]` → `[..., K]`: L2 → whitening → L2 → attention weighting."""
        x = _l2_normalize(x)
        # Full float32 precision: whitening amplifies low-variance directions (TF32 would not do).
        white = jnp.matmul(x - self.pca_mean[...], self.pca_weights[...], precision="highest")
        x = _l2_normalize(white)
        weights = x @ self.attention[...] / 2.0 + 0.5
        return x * weights[..., None]

    def compare(
        self,
        q_emb: jax.Array,
        q_len: jax.Array,
        p_emb: jax.Array,
        p_len: jax.Array,
        micro_batch: int | None = None,
    ) -> PairOutput:
        """Pairs of embedded videos → `PairOutput`.

        `q_emb` is `[B, N, K]`, or `[N, K]` for one query against every database video; `p_emb` is
        `[B, M, K]`; `q_len`, `p_len` are `[B]` valid segment counts (at least 4; 10 after
        `repeat_to_min_length`). `micro_batch` pairs at a time go through the network (a
        `lax.map` over chunks, the batch padded to a multiple; 0: all at once; None:
        `default_micro_batch`). The results do not depend on it.
        """
        batch = p_emb.shape[0]
        if micro_batch is None:
            micro_batch = default_micro_batch(q_emb.shape[-2], p_emb.shape[-2])
        if not 0 < micro_batch < batch:
            return self._compare(q_emb, q_len, p_emb, p_len)
        q_len = jnp.broadcast_to(q_len, (batch,))
        if q_emb.ndim == 2:
            q_emb = jnp.broadcast_to(q_emb, (batch, *q_emb.shape))
        chunks = -(-batch // micro_batch)

        def split(x: jax.Array) -> jax.Array:
            x = jnp.pad(x, [(0, chunks * micro_batch - batch)] + [(0, 0)] * (x.ndim - 1), "edge")
            return x.reshape(chunks, micro_batch, *x.shape[1:])

        out = jax.lax.map(
            lambda a: self._compare(*a), tuple(map(split, (q_emb, q_len, p_emb, p_len)))
        )
        return jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:])[:batch], out)

    def _compare(
        self, q_emb: jax.Array, q_len: jax.Array, p_emb: jax.Array, p_len: jax.Array
    ) -> PairOutput:
        if q_emb.ndim == 2 and jnp.ndim(q_len) > 0:  # one query, but a length per pair
            q_emb = jnp.broadcast_to(q_emb, (p_emb.shape[0], *q_emb.shape))
        pattern = "nk,bmk->bnm" if q_emb.ndim == 2 else "bnk,bmk->bnm"
        # The comparator's first padding, done on the segments (a repeated segment gives a
        # repeated row or column of similarities): far cheaper than on the matrix.
        padded = jnp.einsum(
            pattern, _edge_pad_segments(q_emb, q_len), _edge_pad_segments(p_emb, p_len)
        )
        q_len = jnp.broadcast_to(q_len, p_len.shape)
        raw, rows, cols = self.comparator.from_padded(padded, q_len, p_len)
        similarity = masked_chamfer(jnp.clip(raw, -1.0, 1.0), rows, cols)
        return PairOutput(similarity, raw, rows, cols)

    def __call__(
        self, q: jax.Array, q_len: jax.Array, p: jax.Array, p_len: jax.Array
    ) -> PairOutput:
        """Pairs of raw segment features (`[B, N, D]`, `[B, M, D]`) → `PairOutput`."""
        return self.compare(self.embed(q), q_len, self.embed(p), p_len)


def embed_fn(model: AuSiL) -> Callable[[jax.Array], jax.Array]:
    """A jitted `model.embed` (compiled once per input shape)."""
    graphdef, state = nnx.split(model)
    embed = jax.jit(lambda state, x: nnx.merge(graphdef, state).embed(x))
    return lambda x: embed(state, x)


def similarity_fn(
    model: AuSiL,
) -> Callable[[jax.Array, jax.Array, jax.Array, jax.Array], jax.Array]:
    """A jitted `(q_emb, q_len, p_emb, p_len) → similarity [B]` (see `AuSiL.compare`)."""
    graphdef, state = nnx.split(model)

    @jax.jit
    def similarity(state, q_emb, q_len, p_emb, p_len):
        return nnx.merge(graphdef, state).compare(q_emb, q_len, p_emb, p_len).similarity

    return lambda q_emb, q_len, p_emb, p_len: similarity(state, q_emb, q_len, p_emb, p_len)


# ---------------------------------------------------------------------------------------------
# Training losses (the original released none; these are ViSiL's)


def ausil_triplet_loss(positive: jax.Array, negative: jax.Array, margin: float = 0.5) -> jax.Array:
    """Mean over triplets of `max(0, s(a, n) − s(a, p) + margin)` on video similarities."""
    return jnp.mean(jax.nn.relu(negative - positive + margin))


def similarity_regularisation(raw: jax.Array, rows: jax.Array, cols: jax.Array) -> jax.Array:
    """Penalty on comparator outputs outside [−1, 1]: per pair the sum over valid cells of
    `|max(0, s − 1)| + |min(0, s + 1)|`, averaged over the pairs."""
    valid = (jnp.arange(raw.shape[1])[None, :, None] < rows[:, None, None]) & (
        jnp.arange(raw.shape[2])[None, None, :] < cols[:, None, None]
    )
    excess = jax.nn.relu(raw - 1.0) + jax.nn.relu(-1.0 - raw)
    return jnp.mean(jnp.sum(jnp.where(valid, excess, 0.0), axis=(1, 2)))
