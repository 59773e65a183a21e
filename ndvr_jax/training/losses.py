"""Triplet losses: the original's offline triplet loss and in-batch mining over the global batch.

All distances are squared Euclidean, as in the original loss
`max(0, ‖a − p‖² − ‖a − n‖² + γ)` (γ = 1 for L2-normalised 500-d embeddings).

Mining works from integer group labels: two different rows with the same label >= 0 are a
positive pair; rows with different labels are a negative pair, and a row labelled -1 ("no group")
is a negative of every other row. `valid` (optional, bool per row) drops padding rows from
every role.

Every loss is written on the whole (global) batch: under `jax.jit` with the batch sharded over a
mesh, XLA inserts the communication, so the same code gives the same values on 1 device or N.
Batch-all and semi-hard sort each anchor's negative distances once (O(B² log B) time, O(B²)
memory) instead of materialising the B³ triplet tensor.

Each loss returns `(loss, aux)`; aux holds float32 scalars:
  active_fraction  fraction of the loss's triplets with a positive loss
  num_triplets     number of triplets the loss is over
  pos_dist         mean squared anchor-positive distance of those triplets' positive pairs
  neg_dist         mean squared anchor-negative distance (batch-all: over all negative pairs)
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

__all__ = [
    "MINING_STRATEGIES",
    "batch_all_triplet_loss",
    "batch_hard_triplet_loss",
    "mined_triplet_loss",
    "pair_masks",
    "pairwise_squared_distances",
    "semi_hard_triplet_loss",
    "triplet_loss",
]

Aux = dict[str, jax.Array]


def _safe_mean(total: jax.Array, count: jax.Array) -> jax.Array:
    return total / jnp.maximum(count, 1).astype(total.dtype)


def triplet_loss(
    anchor: jax.Array,
    positive: jax.Array,
    negative: jax.Array,
    margin: float = 1.0,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, Aux]:
    """The original's offline loss: mean over triplets of `max(0, ‖a−p‖² − ‖a−n‖² + margin)`.

    Args:
      anchor, positive, negative: [B, E] embeddings of B triplets.
      valid: optional [B] bool; padding triplets (False) are left out of every mean.
    """
    pos = jnp.sum(jnp.square(anchor - positive), axis=-1)
    neg = jnp.sum(jnp.square(anchor - negative), axis=-1)
    losses = jax.nn.relu(pos - neg + margin)
    weight = jnp.ones_like(losses) if valid is None else valid.astype(losses.dtype)
    count = jnp.sum(weight)
    aux = {
        "active_fraction": _safe_mean(jnp.sum(weight * (losses > 0)), count),
        "num_triplets": count,
        "pos_dist": _safe_mean(jnp.sum(weight * pos), count),
        "neg_dist": _safe_mean(jnp.sum(weight * neg), count),
    }
    return _safe_mean(jnp.sum(weight * losses), count), aux


def pairwise_squared_distances(x: jax.Array) -> jax.Array:
    """[B, B] squared Euclidean distances between the rows of x (exact 0 on the diagonal)."""
    sq = jnp.sum(jnp.square(x), axis=-1)
    gram = jnp.matmul(x, x.T, precision=jax.lax.Precision.HIGHEST)
    d = jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * gram, 0.0)
    return jnp.where(jnp.eye(x.shape[0], dtype=bool), 0.0, d)


def pair_masks(labels: jax.Array, valid: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """[B, B] positive-pair and negative-pair masks from group labels (-1 = no group)."""
    labels = jnp.asarray(labels)
    n = labels.shape[0]
    keep = jnp.ones((n,), bool) if valid is None else jnp.asarray(valid, bool)
    both = keep[:, None] & keep[None, :] & ~jnp.eye(n, dtype=bool)
    same = labels[:, None] == labels[None, :]
    grouped = (labels >= 0)[:, None]
    return both & same & grouped, both & ~(same & grouped)


def _sorted_negatives(d: jax.Array, neg: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Each anchor's negative distances ascending (padded with +inf), and their counts."""
    return jnp.sort(jnp.where(neg, d, jnp.inf), axis=1), jnp.sum(neg, axis=1)


def _count_below(sorted_rows: jax.Array, queries: jax.Array, side: str) -> jax.Array:
    """Per row, how many entries of the sorted row are < (side='left') / <= ('right') queries."""
    return jax.vmap(lambda row, q: jnp.searchsorted(row, q, side=side))(sorted_rows, queries)


def batch_all_triplet_loss(
    embeddings: jax.Array,
    labels: jax.Array,
    margin: float = 1.0,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, Aux]:
    """Mean loss over the active triplets among all valid (anchor, positive, negative) triplets.

    For a positive pair (a, p) with t = D[a,p] + margin, its triplets with a positive loss are
    the negatives with D[a,n] < t; their loss sum is k·t − (sum of the k smallest D[a,n]), read
    from the sorted negatives and their cumulative sums.
    """
    d = pairwise_squared_distances(embeddings)
    pos, neg = pair_masks(labels, valid)
    sorted_neg, n_neg = _sorted_negatives(d, neg)
    prefix = jnp.cumsum(jnp.where(jnp.isfinite(sorted_neg), sorted_neg, 0.0), axis=1)
    prefix = jnp.pad(prefix, ((0, 0), (1, 0)))
    t = d + margin
    k = _count_below(sorted_neg, t, side="left")
    active_sum = k * t - jnp.take_along_axis(prefix, k, axis=1)
    n_active = jnp.sum(jnp.where(pos, k, 0))
    num = jnp.sum(jnp.where(pos, n_neg[:, None], 0)).astype(jnp.float32)
    n_pos_pairs, n_neg_pairs = jnp.sum(pos), jnp.sum(neg)
    aux = {
        "active_fraction": _safe_mean(n_active.astype(jnp.float32), num),
        "num_triplets": num,
        "pos_dist": _safe_mean(jnp.sum(jnp.where(pos, d, 0.0)), n_pos_pairs),
        "neg_dist": _safe_mean(jnp.sum(jnp.where(neg, d, 0.0)), n_neg_pairs),
    }
    return _safe_mean(jnp.sum(jnp.where(pos, active_sum, 0.0)), n_active), aux


def batch_hard_triplet_loss(
    embeddings: jax.Array,
    labels: jax.Array,
    margin: float = 1.0,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, Aux]:
    """Per anchor: its farthest positive against its closest negative; mean over anchors.

    Anchors without a positive or without a negative are left out.
    """
    d = pairwise_squared_distances(embeddings)
    pos, neg = pair_masks(labels, valid)
    anchors = jnp.any(pos, axis=1) & jnp.any(neg, axis=1)
    hardest_pos = jnp.where(anchors, jnp.max(jnp.where(pos, d, -jnp.inf), axis=1), 0.0)
    hardest_neg = jnp.where(anchors, jnp.min(jnp.where(neg, d, jnp.inf), axis=1), 0.0)
    losses = jnp.where(anchors, jax.nn.relu(hardest_pos - hardest_neg + margin), 0.0)
    count = jnp.sum(anchors)
    aux = {
        "active_fraction": _safe_mean(jnp.sum(losses > 0).astype(jnp.float32), count),
        "num_triplets": count.astype(jnp.float32),
        "pos_dist": _safe_mean(jnp.sum(hardest_pos), count),
        "neg_dist": _safe_mean(jnp.sum(hardest_neg), count),
    }
    return _safe_mean(jnp.sum(losses), count), aux


def semi_hard_triplet_loss(
    embeddings: jax.Array,
    labels: jax.Array,
    margin: float = 1.0,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, Aux]:
    """FaceNet's semi-hard mining: one negative per positive pair; mean over positive pairs.

    For a positive pair (a, p) the negative is the closest one farther from the anchor than the
    positive (D[a,n] > D[a,p]); it gives a positive loss exactly when it lies inside the margin.
    Fallback when no negative is farther than the positive (all are harder): the farthest
    negative, i.e. the least hard one (the rule of TensorFlow Addons' semi-hard loss). Pairs
    whose anchor has no negative are left out.
    """
    d = pairwise_squared_distances(embeddings)
    pos, neg = pair_masks(labels, valid)
    sorted_neg, n_neg = _sorted_negatives(d, neg)
    first_farther = _count_below(sorted_neg, d, side="right")
    fallback = jnp.maximum(n_neg - 1, 0)[:, None]
    pick = jnp.where(first_farther < n_neg[:, None], first_farther, fallback)
    chosen = jnp.take_along_axis(sorted_neg, pick, axis=1)
    pairs = pos & (n_neg > 0)[:, None]
    chosen = jnp.where(pairs, chosen, 0.0)
    losses = jnp.where(pairs, jax.nn.relu(d - chosen + margin), 0.0)
    count = jnp.sum(pairs)
    aux = {
        "active_fraction": _safe_mean(jnp.sum(losses > 0).astype(jnp.float32), count),
        "num_triplets": count.astype(jnp.float32),
        "pos_dist": _safe_mean(jnp.sum(jnp.where(pairs, d, 0.0)), count),
        "neg_dist": _safe_mean(jnp.sum(chosen), count),
    }
    return _safe_mean(jnp.sum(losses), count), aux


MINING_STRATEGIES: dict[str, Callable[..., tuple[jax.Array, Aux]]] = {
    "batch_all": batch_all_triplet_loss,
    "batch_hard": batch_hard_triplet_loss,
    "semi_hard": semi_hard_triplet_loss,
}


def mined_triplet_loss(
    embeddings: jax.Array,
    labels: jax.Array,
    strategy: str,
    margin: float = 1.0,
    valid: jax.Array | None = None,
) -> tuple[jax.Array, Aux]:
    """In-batch mined triplet loss by name: "batch_all", "batch_hard" or "semi_hard"."""
    if strategy not in MINING_STRATEGIES:
        raise ValueError(
            f"unknown mining strategy {strategy!r}; use one of {list(MINING_STRATEGIES)}"
        )
    return MINING_STRATEGIES[strategy](embeddings, labels, margin, valid)
