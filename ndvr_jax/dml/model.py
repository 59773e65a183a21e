"""The DML network of ndvr-dml: an MLP from a video (or frame) vector to an L2-normalised embedding.

Layers as the original: fully connected layers of `hidden_sizes`, then one of `embedding_dim`,
each followed by the activation (tanh by default; the original applies it to the embedding
layer too), then L2 normalisation `x / sqrt(max(‖x‖², 1e-15))` (TF1's `l2_normalize` with the
original's epsilon). Default 4096 → 2000 → 1000 → 500.

Initialisation as the original's `tf.contrib.layers.fully_connected` defaults: Xavier/Glorot
uniform weights, U(±sqrt(6 / (fan_in + fan_out))), and zero biases.

Mixed precision (`compute_dtype="bfloat16"`): parameters (and so the optimiser state) stay float32;
each layer's matmul takes bfloat16 inputs and accumulates and returns float32 (activations, bias,
normalisation and the loss stay float32). The backward pass is written out (`low_precision_matmul`)
so that both of its matmuls also take bfloat16 inputs with float32 results: left to autodiff, the
weight gradient `xᵀ·g` is a transposed-operand matmul that XLA:CPU runs in float32, and a bf16×bf16
matmul with a bf16 result takes a slow path there. On CPUs with AMX (or GPUs) the bf16 matmuls run
several times faster than float32 ones.

Fusion (DESIGN §3):
  early  `embed_video_early`: the MLP on the global video vector.
  late   `embed_video_late`: every frame minus its mean and L2-normalised (the original's
         `normalize`, `ndvr_jax.search.l2_normalize`), the MLP on every frame, the mean over real
         frames, then L2 (norm + 1e-15).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx
from jax import lax

from ndvr_jax import search

__all__ = [
    "ACTIVATIONS",
    "DML",
    "embed_video_early",
    "embed_video_late",
    "l2_normalize",
    "low_precision_matmul",
]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
}
TF_L2_EPS = 1e-15  # tf.nn.l2_normalize(x, 1, 1e-15) in the original


def l2_normalize(x: jax.Array, eps: float = TF_L2_EPS) -> jax.Array:
    """x / sqrt(max(‖x‖², eps)) along the last axis, as TF1's `tf.nn.l2_normalize`."""
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), eps))


def _transposed_copy(x: jax.Array) -> jax.Array:
    """x.T [k, m] of a 2-D x [m, k], as a real copy in row-major layout.

    A plain `x.T` is folded into the matmul that uses it, which XLA:CPU then runs in float32;
    splitting an axis first hides the transpose from that rewrite, so it stays a copy (cheap next
    to the matmul) and the matmul keeps its bfloat16 inputs.
    """
    m, k = x.shape
    split = next((f for f in (16, 8, 4, 2) if k % f == 0), 0)
    if not split:
        return x.T
    return x.reshape(m, k // split, split).transpose(1, 2, 0).reshape(k, m)


def _matmul_f32(a: jax.Array, b: jax.Array, contract_b: int) -> jax.Array:
    dims = (((1,), (contract_b,)), ((), ()))
    return lax.dot_general(a, b, dims, preferred_element_type=jnp.float32)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def low_precision_matmul(x: jax.Array, kernel: jax.Array, dtype: jnp.dtype) -> jax.Array:
    """[M, K] float32 x [K, N] float32 → [M, N] float32, with inputs rounded to `dtype`.

    Forward and backward matmuls take `dtype` inputs and accumulate in float32; the gradients
    are float32. (The gradient with respect to x is what autodiff of the rounded product gives,
    except that the incoming gradient is rounded to `dtype` too, as under torch.autocast.)
    """
    return _matmul_f32(x.astype(dtype), kernel.astype(dtype), 0)


def _low_precision_matmul_fwd(x, kernel, dtype):
    x, kernel = x.astype(dtype), kernel.astype(dtype)
    return _matmul_f32(x, kernel, 0), (x, kernel)


def _low_precision_matmul_bwd(dtype, residuals, g):
    x, kernel = residuals
    g = g.astype(dtype)
    dx = _matmul_f32(g, kernel, 1)  # g · kernelᵀ
    dkernel = _matmul_f32(_transposed_copy(x), g, 0)  # xᵀ · g
    return dx, dkernel


low_precision_matmul.defvjp(_low_precision_matmul_fwd, _low_precision_matmul_bwd)


class DML(nnx.Module):
    """MLP + L2 normalisation; `__call__` maps [..., in_features] to [..., embedding_dim]."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (2000, 1000),
        embedding_dim: int = 500,
        activation: str = "tanh",
        *,
        compute_dtype: str | jnp.dtype | None = None,
        param_dtype: jnp.dtype = jnp.float32,
        rngs: nnx.Rngs,
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of {list(ACTIVATIONS)}")
        sizes = [in_features, *hidden_sizes, embedding_dim]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"layer sizes must be positive, got {sizes}")
        self.activation = activation
        self.embedding_dim = embedding_dim
        compute = jnp.dtype(compute_dtype or param_dtype)
        self.compute_dtype = None if compute == jnp.dtype(param_dtype) else compute
        self.layers = nnx.List(
            [
                nnx.Linear(
                    n_in,
                    n_out,
                    kernel_init=nnx.initializers.glorot_uniform(),
                    bias_init=nnx.initializers.zeros_init(),
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for layer in self.layers:
            x = act(self._dense(layer, x))
        return l2_normalize(x.astype(jnp.float32))

    def _dense(self, layer: nnx.Linear, x: jax.Array) -> jax.Array:
        if self.compute_dtype is None:
            return layer(x)
        kernel = layer.kernel[...].astype(jnp.float32)
        rows = x.reshape(-1, x.shape[-1]).astype(jnp.float32)
        y = low_precision_matmul(rows, kernel, self.compute_dtype)
        return y.reshape(*x.shape[:-1], -1) + layer.bias[...].astype(jnp.float32)


def embed_video_early(model: DML, global_vectors: jax.Array) -> jax.Array:
    """Early fusion: [N, D] global video vectors to [N, E] embeddings."""
    return model(global_vectors)


def embed_video_late(model: DML, frame_features: jax.Array, mask: jax.Array) -> jax.Array:
    """Late fusion of a padded batch: [B, T, D] frames with [B, T] bool mask to [B, E].

    A video with no real frame gets a zero embedding (the original's zero row for a video
    without features).
    """
    x = frame_features.astype(jnp.float32)
    frames = model(search.l2_normalize(x - jnp.mean(x, axis=-1, keepdims=True)))
    weights = mask.astype(frames.dtype)[..., None]
    mean = jnp.sum(frames * weights, axis=-2) / jnp.maximum(jnp.sum(weights, axis=-2), 1.0)
    return search.l2_normalize(mean)
