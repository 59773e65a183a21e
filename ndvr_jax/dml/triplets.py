"""Offline triplet generation as ndvr-dml does it, with distances in jitted, chunked blocks.

Outputs, in the original's layout (`save_triplet_outputs`):
  `<name>_features.npy`  [N, D] global video vectors, row i = video i of the dataset (a zero row
                         for a video without features, when allowed)
  `<name>_triplets.npy`  [T, 3] int64 rows (anchor, positive, negative) into the features

Rules (DESIGN §3):
  VCDB (`vcdb_triplets`): annotated pairs whose overlap is > threshold in both videos are
    positive pairs; every background distractor closer to the anchor than the positive is a
    hard negative; both directions; the original's two excluded distractors are skipped.
  query sets (`query_set_triplets`): in each set every pair of positives farther apart than
    `min_positive_distance` (0.1) is used in both directions with the set's negatives closer to
    the anchor than the positive. CC_WEB_VIDEO (`cc_web_query_sets`: E/S/V/M/L positives, X/-1
    negatives), FIVR-style annotations with chosen labels (`annotation_query_sets`) and the
    toolkit's own datasets (`group_query_sets`) all produce query sets; `unlabelled_query_sets`
    takes a query's unlabelled database videos as its negatives.

Triplets come out in the original's order. Distances are Euclidean, computed in float32 by one
jitted kernel on fixed-size blocks (block sizes are powers of two up to the chunk arguments and
the last block is padded, so each shape compiles once); the candidates stream through in chunks,
so 100k distractors need memory for one chunk only. Against the original's float64 `cdist`, only
negatives whose distance ties the positive's to ~1e-6 can differ.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from ndvr_jax.data.annotations import Annotation
from ndvr_jax.data.datasets.cc_web import NEGATIVE_LABELS, POSITIVE_LABELS, CCWebVideo
from ndvr_jax.data.datasets.generic import DatasetError, preview_ids
from ndvr_jax.data.datasets.vcdb import ORIGINAL_EXCLUDED_DISTRACTORS, VCDB
from ndvr_jax.data.feature_lists import FeatureError, load_frame_features
from ndvr_jax.io.atomic import save_npy_atomic
from ndvr_jax.search import global_vectors

__all__ = [
    "QuerySet",
    "annotation_query_sets",
    "cc_web_query_sets",
    "dataset_global_features",
    "group_query_sets",
    "pairs_closer_than",
    "pairwise_distances",
    "query_set_triplets",
    "save_triplet_outputs",
    "unlabelled_query_sets",
    "vcdb_triplets",
]

log = logging.getLogger(__name__)

QuerySet = tuple[Sequence[int], Sequence[int]]  # (positive rows, negative rows)


def dataset_global_features(
    video_ids: Sequence[str],
    feature_files: Mapping[str, str],
    *,
    missing: Literal["error", "zeros"] = "error",
    expected_dim: int | None = None,
    workers: int = 4,
    dtype: np.dtype | type = np.float32,
    videos_per_chunk: int = 256,
) -> np.ndarray:
    """[N, D] global vectors of `video_ids` (row order kept) from their frame-feature files.

    Files are read by `workers` threads and turned into vectors (`ndvr_jax.search.global_vectors`)
    `videos_per_chunk` at a time, so memory holds one chunk of frame features.

    The empty id (CC_WEB_VIDEO's placeholder row 0) always gets a zero row. Ids without an
    entry in `feature_files` raise, or with `missing="zeros"` get a zero row as in the original.
    A listed file that is missing or malformed always raises `FeatureError`.
    """
    absent = [v for v in video_ids if v and v not in feature_files]
    if absent and missing == "error":
        raise FeatureError(
            f"{len(absent)} videos have no entry in the feature list: {preview_ids(absent)}"
        )
    if absent:
        log.warning("%d videos have no features; they get zero vectors", len(absent))
    listed = [(i, v) for i, v in enumerate(video_ids) if v in feature_files]
    if not listed:
        raise FeatureError("none of the dataset's videos is in the feature list")
    if expected_dim is None:
        expected_dim = load_frame_features(feature_files[listed[0][1]], listed[0][1]).shape[1]

    def load(video_id: str) -> np.ndarray:
        return load_frame_features(feature_files[video_id], video_id, expected_dim)

    out = np.zeros((len(video_ids), expected_dim), dtype=dtype)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        for start in range(0, len(listed), videos_per_chunk):
            rows, ids = zip(*listed[start : start + videos_per_chunk], strict=True)
            out[list(rows)] = global_vectors(list(pool.map(load, ids)))
    return out


def _block_size(n: int, limit: int) -> int:
    """Smallest power of two >= n (at least 8), capped at `limit`."""
    return int(min(max(8, 1 << max(0, n - 1).bit_length()), limit))


def _padded(x: np.ndarray, rows: int) -> np.ndarray:
    if len(x) == rows:
        return np.ascontiguousarray(x, dtype=np.float32)
    out = np.zeros((rows, x.shape[1]), np.float32)
    out[: len(x)] = x
    return out


@jax.jit
def _device_block(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """A block and its squared row norms (a separate executable, so no kernel recomputes them)."""
    return x, jnp.sum(x * x, axis=1)


@jax.jit
def _squared_distances(a: jax.Array, a_sq: jax.Array, c: jax.Array, c_sq: jax.Array) -> jax.Array:
    gram = jnp.matmul(a, c.T, precision=jax.lax.Precision.HIGHEST)
    return jnp.maximum(a_sq[:, None] + c_sq[None, :] - 2.0 * gram, 0.0)


@jax.jit
def _closer_block(
    a: jax.Array,
    a_sq: jax.Array,
    thr2: jax.Array,
    c: jax.Array,
    c_sq: jax.Array,
    n_valid: jax.Array,
) -> jax.Array:
    inside = jnp.arange(c.shape[0]) < n_valid
    return (_squared_distances(a, a_sq, c, c_sq) < thr2[:, None]) & inside[None, :]


def pairwise_distances(x: np.ndarray, y: np.ndarray, *, chunk: int = 1024) -> np.ndarray:
    """[len(x), len(y)] float32 Euclidean distances, computed block by block."""
    bx, by = _block_size(len(x), chunk), _block_size(len(y), chunk)
    out = np.empty((len(x), len(y)), np.float32)
    y_blocks = [_device_block(_padded(y[j : j + by], by)) for j in range(0, len(y), by)]
    for i in range(0, len(x), bx):
        xa = _device_block(_padded(x[i : i + bx], bx))
        for j, yb in zip(range(0, len(y), by), y_blocks, strict=True):
            block = np.sqrt(np.asarray(_squared_distances(*xa, *yb)))
            out[i : i + bx, j : j + by] = block[: min(bx, len(x) - i), : min(by, len(y) - j)]
    return out


def pairs_closer_than(
    anchors: np.ndarray,
    thresholds: np.ndarray,
    features: np.ndarray,
    candidate_rows: np.ndarray,
    *,
    anchor_chunk: int = 512,
    candidate_chunk: int = 4096,
) -> tuple[np.ndarray, np.ndarray]:
    """All (i, j) with ‖anchors[i] − features[candidate_rows[j]]‖ < thresholds[i], sorted.

    Candidates stream through in chunks gathered from `features`, so memory holds one chunk
    and one [anchor_chunk, candidate_chunk] boolean block at a time.
    """
    ba = _block_size(len(anchors), anchor_chunk)
    bc = _block_size(len(candidate_rows), candidate_chunk)
    thr2 = np.square(np.asarray(thresholds, np.float64)).astype(np.float32)
    blocks = []
    for i in range(0, len(anchors), ba):
        t = np.full(ba, -1.0, np.float32)  # padding anchors match nothing
        t[: len(thr2[i : i + ba])] = thr2[i : i + ba]
        blocks.append((i, _device_block(_padded(anchors[i : i + ba], ba)), jnp.asarray(t)))
    hits_a, hits_c = [], []
    for j in range(0, len(candidate_rows), bc):
        rows = candidate_rows[j : j + bc]
        chunk = _device_block(_padded(features[rows], bc))
        masks = [(i, _closer_block(*a, t, *chunk, len(rows))) for i, a, t in blocks]
        for i, mask in masks:
            ai, ci = np.nonzero(np.asarray(mask))
            hits_a.append(ai + i)
            hits_c.append(ci + j)
    if not hits_a:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    ai, ci = np.concatenate(hits_a).astype(np.int64), np.concatenate(hits_c).astype(np.int64)
    order = np.lexsort((ci, ai))
    return ai[order], ci[order]


def _euclidean_rows(features: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    diff = features[a].astype(np.float64) - features[b].astype(np.float64)
    return np.sqrt(np.sum(diff * diff, axis=1))


def vcdb_triplets(
    features: np.ndarray,
    dataset: VCDB,
    *,
    threshold: float = 0.8,
    excluded: Collection[int] = ORIGINAL_EXCLUDED_DISTRACTORS,
    anchor_chunk: int = 512,
    candidate_chunk: int = 4096,
) -> np.ndarray:
    """The VCDB rule; rows of `features` follow `dataset.video_ids`."""
    _check_rows(features, len(dataset.video_ids), "VCDB")
    keep = (dataset.overlaps[:, 0] > threshold) & (dataset.overlaps[:, 1] > threshold)
    pairs = dataset.pairs[keep]
    anchors = pairs.reshape(-1)  # pair k: row 2k anchors video 0, row 2k + 1 video 1
    positives = pairs[:, ::-1].reshape(-1)
    thresholds = _euclidean_rows(features, anchors, positives)
    candidates = dataset.distractors[~np.isin(dataset.distractors, list(excluded))]
    log.info("VCDB: %d positive pairs, %d distractors", len(pairs), len(candidates))
    ai, ci = pairs_closer_than(
        features[anchors],
        thresholds,
        features,
        candidates,
        anchor_chunk=anchor_chunk,
        candidate_chunk=candidate_chunk,
    )
    return np.stack([anchors[ai], positives[ai], candidates[ci]], axis=1).astype(np.int64)


def query_set_triplets(
    features: np.ndarray,
    query_sets: Sequence[QuerySet],
    *,
    min_positive_distance: float = 0.1,
    chunk: int = 1024,
) -> np.ndarray:
    """The query-set rule (CC_WEB_VIDEO's): see the module docstring."""
    out = []
    for positives, negatives in query_sets:
        pos, neg = np.asarray(positives, np.int64), np.asarray(negatives, np.int64)
        if len(pos) < 2 or len(neg) == 0:
            continue
        d_pp = pairwise_distances(features[pos], features[pos], chunk=chunk)
        d_pn = pairwise_distances(features[pos], features[neg], chunk=chunk)
        for q in range(len(pos) - 1):
            ps = q + 1 + np.flatnonzero(d_pp[q, q + 1 :] > min_positive_distance)
            thr = d_pp[q, ps][:, None]
            fi, fn = np.nonzero(d_pn[q][None, :] < thr)
            bi, bn = np.nonzero(d_pn[ps] < thr)
            which = np.concatenate([fi, bi])
            backward = np.concatenate([np.zeros_like(fi), np.ones_like(bi)])
            negs = np.concatenate([fn, bn])
            order = np.lexsort((negs, backward, which))
            p_rows, q_row = pos[ps[which[order]]], np.full(len(order), pos[q])
            anchor = np.where(backward[order] == 1, p_rows, q_row)
            positive = np.where(backward[order] == 1, q_row, p_rows)
            out.append(np.stack([anchor, positive, neg[negs[order]]], axis=1))
    if not out:
        return np.zeros((0, 3), np.int64)
    return np.concatenate(out).astype(np.int64)


def cc_web_query_sets(
    dataset: CCWebVideo,
    positive_labels: Collection[str] = POSITIVE_LABELS,
    negative_labels: Collection[str] = NEGATIVE_LABELS,
) -> list[QuerySet]:
    """CC_WEB_VIDEO query sets: per set, the rows labelled positive and negative."""
    return [
        (dataset.labelled(i, positive_labels), dataset.labelled(i, negative_labels))
        for i in range(len(dataset.queries))
    ]


def annotation_query_sets(
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    video_index: Mapping[str, int],
    positive_labels: Collection[str],
    negative_labels: Collection[str],
) -> list[QuerySet]:
    """Query sets of a FIVR-style `{query: {label: [ids]}}` annotation.

    Positives: the query and its videos with a positive label; negatives: its videos with a
    negative label (and no positive one). Every id must be in `video_index` (id -> row).
    """
    unknown = sorted(
        {q for q in annotation if q not in video_index}
        | {
            v
            for labels in annotation.values()
            for label, ids in labels.items()
            if label in positive_labels or label in negative_labels
            for v in ids
            if v not in video_index
        }
    )
    if unknown:
        raise DatasetError(f"{len(unknown)} annotated ids have no features: {preview_ids(unknown)}")
    sets = []
    for query, labels in annotation.items():
        pos = dict.fromkeys(
            [query] + [v for label in positive_labels for v in labels.get(label, ())]
        )
        neg = dict.fromkeys(
            v for label in negative_labels for v in labels.get(label, ()) if v not in pos
        )
        sets.append(([video_index[v] for v in pos], [video_index[v] for v in neg]))
    return sets


def group_query_sets(groups: np.ndarray, rows: np.ndarray | None = None) -> list[QuerySet]:
    """One query set per group >= 0 among `rows`; negatives are all other rows (group -1 too)."""
    rows = np.arange(len(groups)) if rows is None else np.asarray(rows)
    g = np.asarray(groups)[rows]
    return [(rows[g == label], rows[g != label]) for label in np.unique(g[g >= 0])]


def _check_rows(features: np.ndarray, n: int, name: str) -> None:
    if features.ndim != 2 or len(features) != n:
        raise DatasetError(f"{name}: features have shape {features.shape}, expected [{n}, D]")


def save_triplet_outputs(
    output_dir: str | os.PathLike, name: str, features: np.ndarray, triplets: np.ndarray
) -> tuple[Path, Path]:
    """Writes `<name>_features.npy` and `<name>_triplets.npy` atomically; returns both paths."""
    if triplets.size and (triplets.min() < 0 or triplets.max() >= len(features)):
        raise ValueError("triplets index rows outside the feature array")
    out = Path(output_dir)
    paths = out / f"{name}_features.npy", out / f"{name}_triplets.npy"
    save_npy_atomic(paths[0], features)
    save_npy_atomic(paths[1], np.asarray(triplets, np.int64).reshape(-1, 3))
    return paths


def unlabelled_query_sets(
    annotation: Annotation,
    row: Mapping[str, int],
    database_ids: Sequence[str],
    positive_labels: Collection[str],
) -> list[QuerySet]:
    """Query sets whose negatives are the database videos the query's annotation does not name."""
    sets = []
    for query, labels in annotation.items():
        named = {v for ids in labels.values() for v in ids}
        positives = dict.fromkeys(
            [query, *(v for lb in positive_labels for v in labels.get(lb, ()))]
        )
        missing = [v for v in positives if v not in row]
        if missing:
            raise DatasetError(
                f"query {query!r}: annotated ids without features: {preview_ids(missing)}"
            )
        negatives = [row[v] for v in database_ids if v not in named and v != query]
        sets.append(([row[v] for v in positives], negatives))
    return sets
