"""The DML network of ndvr-dml: an MLP from a video (or frame) vector to an L2-normalised embedding.

Layers as the original: fully connected layers of `hidden_sizes`, then one of `embedding_dim`,
each followed by the activation (tanh by default; the original applies it to the embedding
layer too), then L2 normalisation `x / sqrt(max(‖x‖², 1e-15))` (TF1's `l2_normalize` with the
original's epsilon). Default 4096 → 2000 → 1000 → 500.

Initialisation as the original's `tf.contrib.layers.fully_connected` defaults: Xavier/Glorot
uniform weights, U(±sqrt(6 / (fan_in + fan_out))), and zero biases.

Fusion (DESIGN §3):
  early  `embed_video_early`: the MLP on the global video vector.
  late   `embed_video_late`: every frame minus its mean and L2-normalised (the original's
         `normalize`), the MLP on every frame, the mean over real frames, then L2 (norm + 1e-15).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["ACTIVATIONS", "DML", "embed_video_early", "embed_video_late", "l2_normalize"]

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
    "gelu": jax.nn.gelu,
    "sigmoid": jax.nn.sigmoid,
    "linear": lambda x: x,
}
TF_L2_EPS = 1e-15  # tf.nn.l2_normalize(x, 1, 1e-15) in the original
NORM_EPS = 1e-15  # the original's numpy normalize: x / (‖x‖ + 1e-15)


def l2_normalize(x: jax.Array, eps: float = TF_L2_EPS) -> jax.Array:
    """x / sqrt(max(‖x‖², eps)) along the last axis, as TF1's `tf.nn.l2_normalize`."""
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(jnp.square(x), axis=-1, keepdims=True), eps))


class DML(nnx.Module):
    """MLP + L2 normalisation; `__call__` maps [..., in_features] to [..., embedding_dim]."""

    def __init__(
        self,
        in_features: int,
        hidden_sizes: Sequence[int] = (2000, 1000),
        embedding_dim: int = 500,
        activation: str = "tanh",
        *,
        dtype: jnp.dtype | None = None,
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
        self.layers = nnx.List(
            [
                nnx.Linear(
                    n_in,
                    n_out,
                    kernel_init=nnx.initializers.glorot_uniform(),
                    bias_init=nnx.initializers.zeros_init(),
                    dtype=dtype,
                    param_dtype=param_dtype,
                    rngs=rngs,
                )
                for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
            ]
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        act = ACTIVATIONS[self.activation]
        for layer in self.layers:
            x = act(layer(x))
        return l2_normalize(x.astype(jnp.float32))


def embed_video_early(model: DML, global_vectors: jax.Array) -> jax.Array:
    """Early fusion: [N, D] global video vectors to [N, E] embeddings."""
    return model(global_vectors)


def embed_video_late(model: DML, frame_features: jax.Array, mask: jax.Array) -> jax.Array:
    """Late fusion of a padded batch: [B, T, D] frames with [B, T] bool mask to [B, E].

    A video with no real frame gets a zero embedding (the original's zero row for a video
    without features).
    """
    x = frame_features.astype(jnp.float32)
    x = x - jnp.mean(x, axis=-1, keepdims=True)
    x = x / (jnp.linalg.norm(x, axis=-1, keepdims=True) + NORM_EPS)
    frames = model(x)
    weights = mask.astype(frames.dtype)[..., None]
    mean = jnp.sum(frames * weights, axis=-2) / jnp.maximum(jnp.sum(weights, axis=-2), 1.0)
    return mean / (jnp.linalg.norm(mean, axis=-1, keepdims=True) + NORM_EPS)
