"""Retrieval quality of binary codes: mAP@k and full mAP from Hamming rankings; ITQ baseline codes.

Relevance is class equality (label >= 0) and a query never ranks itself (same id). Rankings are
by Hamming distance ascending, ties in database order, and the metrics are
`ndvr_jax.evaluation.metrics`'s (mAP@k divides by the relevant items found in the top k, as the
hashing literature does; full mAP by all relevant items).

ITQ (Gong & Lazebnik): PCA to n dimensions, then alternate B = sign(V R) and the orthogonal
Procrustes rotation R minimising ‖B − V R‖; the code is the sign of the rotated projection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ndvr_jax.evaluation import metrics
from ndvr_jax.hashing import codes

DEFAULT_KS = (5, 10, 20, 100)


def class_relevance(
    query_labels: np.ndarray,
    db_labels: np.ndarray,
    query_ids: Sequence[str],
    db_ids: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """[Q, N] relevance (same class >= 0) and rank mask (not the query itself)."""
    query_labels, db_labels = np.asarray(query_labels), np.asarray(db_labels)
    relevance = (query_labels[:, None] == db_labels[None, :]) & (query_labels >= 0)[:, None]
    mask = np.asarray(query_ids)[:, None] != np.asarray(db_ids)[None, :]
    return relevance & mask, mask


def retrieval_metrics(
    scores: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, float]:
    """{"mAP@k": ..., "mAP": ...} of [Q, N] scores (higher = nearer)."""
    num_relevant = relevance.sum(-1)
    out = {}
    for k in ks:
        ap = metrics.average_precision_at_k(scores, relevance, min(k, scores.shape[1]), mask)
        out[f"mAP@{k}"] = float(metrics.mean_over_queries(ap, num_relevant))
    out["mAP"] = float(metrics.mean_average_precision(scores, relevance, mask))
    return out


def hamming_metrics(
    query_codes: np.ndarray,
    db_codes: np.ndarray,
    relevance: np.ndarray,
    mask: np.ndarray,
    ks: Sequence[int] = DEFAULT_KS,
) -> dict[str, float]:
    """`retrieval_metrics` of the Hamming ranking of packed codes."""
    distances = np.asarray(codes.hamming_distances(query_codes, db_codes))
    return retrieval_metrics(-distances.astype(np.float32), relevance, mask, ks)


class Itq(NamedTuple):
    """A fitted ITQ hash: code = sign((x − mean) @ projection) > 0."""

    mean: np.ndarray  # [D]
    projection: np.ndarray  # [D, n]: PCA basis times the learned rotation


def fit_itq(x: np.ndarray, num_bits: int, iterations: int = 50, seed: int = 0) -> Itq:
    """ITQ on [N, D] embeddings; needs num_bits <= min(N, D)."""
    x = np.asarray(x, np.float64)
    if num_bits > min(x.shape):
        raise ValueError(f"ITQ needs num_bits <= min(N, D) = {min(x.shape)}, got {num_bits}")
    mean = x.mean(0)
    _, _, vt = np.linalg.svd(x - mean, full_matrices=False)
    pca = vt[:num_bits].T
    v = (x - mean) @ pca
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(num_bits, num_bits)))
    for _ in range(iterations):
        b = np.where(v @ rotation >= 0, 1.0, -1.0)
        u, _, wt = np.linalg.svd(v.T @ b)
        rotation = u @ wt
    return Itq(mean.astype(np.float32), (pca @ rotation).astype(np.float32))


def itq_codes(itq: Itq, x: np.ndarray) -> np.ndarray:
    """[N, W] packed ITQ codes of [N, D] embeddings."""
    return np.asarray(codes.pack_bits((np.asarray(x, np.float32) - itq.mean) @ itq.projection > 0))


def bytes_per_video(num_bits: int) -> int:
    """Memory of one packed code (whole uint32 words)."""
    return codes.num_words(num_bits) * 4
