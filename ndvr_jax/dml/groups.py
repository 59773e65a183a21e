"""Group labels of a dataset's videos for in-batch mining (connected components of positives).

Labels: >= 0 a group of near-duplicates, -1 no group (a negative of every video), `LEFT_OUT`
(-2) never sampled (e.g. evaluation queries, or queries whose positives would chain groups).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence

import numpy as np

from ndvr_jax.data.annotations import Annotation
from ndvr_jax.data.datasets import VCDB, CCWebVideo
from ndvr_jax.data.datasets.cc_web import POSITIVE_LABELS

LEFT_OUT = -2  # group label of rows that mining never samples


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def labels(self, n: int) -> np.ndarray:
        out = np.full(n, -1, np.int64)
        roots: dict[int, int] = {}
        for x in sorted(self.parent):
            out[x] = roots.setdefault(self.find(x), len(roots))
        return out


def vcdb_groups(dataset: VCDB, threshold: float = 0.8) -> np.ndarray:
    """Connected components of the positive pairs (overlap > threshold in both); others -1."""
    groups = _UnionFind()
    keep = (dataset.overlaps[:, 0] > threshold) & (dataset.overlaps[:, 1] > threshold)
    for a, b in dataset.pairs[keep]:
        groups.union(int(a), int(b))
    return groups.labels(len(dataset.video_ids))


def cc_web_groups(dataset: CCWebVideo, positive_labels: Collection[str] = POSITIVE_LABELS):
    """Query set i labels its positives i (a video in several sets keeps the first); others -1."""
    out = np.full(len(dataset.video_ids), -1, np.int64)
    for i in range(len(dataset.queries)):
        for row in dataset.labelled(i, positive_labels):
            if out[row] < 0:
                out[row] = i
    return out


def annotation_groups(
    annotation: Annotation,
    query_ids: Iterable[str],
    video_ids: Sequence[str],
    positive_labels: Collection[str],
    max_relevant: int = 2,
) -> np.ndarray:
    """Groups of an annotation: each query joins its positive videos (connected components).

    Queries with more than `max_relevant` positives (e.g. compilations of many sources, which
    would chain unrelated sources into one group) and queries without any are left out (-2);
    other videos in no group get -1. Only `query_ids` are used (e.g. a training fold); the other
    annotated queries among `video_ids` are left out too.
    """
    row = {v: i for i, v in enumerate(video_ids)}
    groups = _UnionFind()
    left_out = {row[q] for q in annotation if q in row}
    for q in query_ids:
        relevant = sorted(
            {row[v] for label in positive_labels for v in annotation[q].get(label, ()) if v in row}
            - {row[q]}
        )
        if 1 <= len(relevant) <= max_relevant:
            left_out.discard(row[q])
            for r in relevant:
                groups.union(row[q], r)
    labels = groups.labels(len(video_ids))
    labels[sorted(left_out)] = LEFT_OUT
    return labels
