"""The candidate stage of database-wide localisation: frame-level k-NN of every query frame over
all database frames (`ndvr_jax.search.search_top_k`), then votes per database video.

A query frame votes once for each video among its k nearest database frames; a video needs
`min_votes` votes, and the `num_candidates` videos with the most votes (ties: lower index) go on
to the aligners, so their cost grows with the candidates, not with the database.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from jax.sharding import Mesh

from ndvr_jax.search import search_top_k


def vote_candidates(
    queries: Sequence[np.ndarray],
    database: Sequence[np.ndarray],
    *,
    k: int = 10,
    num_candidates: int = 5,
    min_votes: int = 3,
    mesh: Mesh | None = None,
) -> list[list[tuple[int, int]]]:
    """Per query, `(database index, votes)` of its candidates, most votes first.

    Regional frames `[T, R, D]` search region by region (every region of a query frame against
    every region of the database's), and a frame votes for the videos any of its regions found."""
    regions = queries[0].shape[1] if queries[0].ndim == 3 else 1
    flat = lambda x: x.reshape(-1, x.shape[-1])
    frames = np.concatenate([flat(v) for v in database])
    owner = np.repeat(np.arange(len(database)), [flat(v).shape[0] for v in database])
    top = search_top_k(
        np.concatenate([flat(q) for q in queries]), frames, min(k, len(frames)), mesh=mesh
    ).index
    top = top.reshape(-1, regions * top.shape[1])  # [query frames, regions · k]
    bounds = np.cumsum([0, *(len(q) for q in queries)])
    out = []
    for start, end in zip(bounds[:-1], bounds[1:], strict=True):
        videos = owner[top[start:end]]  # [T, regions · k]
        hits = np.zeros((end - start, len(database)), bool)
        hits[np.arange(end - start)[:, None], videos] = True
        votes = hits.sum(0)
        order = np.argsort(-votes, kind="stable")[:num_candidates]
        out.append([(int(i), int(votes[i])) for i in order if votes[i] >= min_votes])
    return out
