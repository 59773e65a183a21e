"""The hashing loss: α·cross-entropy + β·in-batch triplet + γ·quantisation, on the global batch.

Cross-entropy is over the rows with a class (label >= 0). The triplet term is the toolkit's mined
triplet loss (`ndvr_jax.training.losses`) on the sigmoid bits, whose squared distance is the
relaxed Hamming distance (the Hamming distance for exact 0/1 bits), so the margin is in bits.
The quantisation term is the mean of 4·p·(1 − p): 1 at p = 0.5, 0 at p ∈ {0, 1}.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from ndvr_jax.hashing.model import HashOutput
from ndvr_jax.training import losses


def classification_loss(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy over the rows with label >= 0 (0 if there are none)."""
    has_class = labels >= 0
    per_row = optax.softmax_cross_entropy_with_integer_labels(logits, jnp.maximum(labels, 0))
    total = jnp.sum(jnp.where(has_class, per_row, 0.0))
    return total / jnp.maximum(jnp.sum(has_class), 1)


def quantization_loss(bits: jax.Array) -> jax.Array:
    """Mean of 4·p·(1 − p) over all bits."""
    return jnp.mean(4.0 * bits * (1.0 - bits))


def hashing_loss(
    output: HashOutput,
    labels: jax.Array,
    *,
    alpha: float,
    beta: float,
    quantization: float,
    margin: float,
    mining: str,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """Total loss and its terms (plus the triplet loss's aux) as metrics."""
    ce = classification_loss(output.logits, labels)
    triplet, aux = losses.mined_triplet_loss(output.bits, labels, mining, margin)
    quant = quantization_loss(output.bits)
    total = alpha * ce + beta * triplet + quantization * quant
    accuracy = jnp.sum((jnp.argmax(output.logits, -1) == labels) & (labels >= 0)) / jnp.maximum(
        jnp.sum(labels >= 0), 1
    )
    return total, {
        "cross_entropy": ce,
        "triplet": triplet,
        "quantization": quant,
        "accuracy": accuracy,
        **aux,
    }
