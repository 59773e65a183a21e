"""VCSL's temporal-network aligner (TN) on a query × reference similarity map.

Nodes are each query frame's `top_k` most similar reference frames whose similarity is at least
`min_sim`. An edge joins node (qi, ri) to (qj, rj) when 0 < qj − qi < max_step and
0 < rj − ri < max_step; entering a node gains its similarity. The aligner repeatedly takes the
longest (highest-gain) path, sets the gain of every edge into its nodes to zero (a frame pair
serves one path; VCSL zeroes only the path's own edges, which lets skip edges along the same
diagonal return as overlapping sub-boxes), and keeps the path's
bounding box if it is at least `min_length` frames on both sides and overlaps every kept box by
IoU ≤ `max_iou`; it stops when no path gains anything or after `max_paths` paths. The box score is
the mean similarity of the path's nodes. The longest path is one dynamic-programming sweep over
query frames, vectorised over the nodes of a frame and their predecessors.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ndvr_jax.pdvr.boxes import Box, accepts


@dataclasses.dataclass(frozen=True)
class TemporalNetwork:
    """TN with VCSL's tuned values as defaults."""

    top_k: int = 3
    max_step: int = 10
    min_sim: float = 0.3
    min_length: int = 5
    max_iou: float = 0.3
    max_paths: int = 10

    def _graph(self, sim_map: np.ndarray):
        """Nodes (query, reference, similarity), ordered by query frame, and the edge gains."""
        k = min(self.top_k, sim_map.shape[1])
        ref = np.argsort(-sim_map, axis=1, kind="stable")[:, :k]
        query = np.repeat(np.arange(sim_map.shape[0]), k)
        ref = ref.reshape(-1)
        sim = sim_map[query, ref]
        keep = sim >= self.min_sim
        query, ref, sim = query[keep], ref[keep], sim[keep]
        dq = query[None, :] - query[:, None]
        dr = ref[None, :] - ref[:, None]
        edge = (dq > 0) & (dq < self.max_step) & (dr > 0) & (dr < self.max_step)
        gain = np.where(edge, sim[None, :], -np.inf)  # gain[i, j]: entering j from i
        return query, ref, sim, gain

    @staticmethod
    def _longest_path(query: np.ndarray, start: np.ndarray, gain: np.ndarray) -> list[int]:
        """Nodes of the highest-gain path (a path may start at any node, gaining `start`)."""
        best = start.copy()
        parent = np.full(len(start), -1)
        for t in np.unique(query):
            nodes = np.flatnonzero(query == t)
            before = nodes[0]  # nodes are sorted by query frame: predecessors come first
            if before == 0:
                continue
            through = best[:before, None] + gain[:before, nodes]
            i = np.argmax(through, axis=0)
            better = through[i, np.arange(len(nodes))] > best[nodes]
            best[nodes[better]] = through[i[better], np.flatnonzero(better)]
            parent[nodes[better]] = i[better]
        end = int(np.argmax(best))
        if best[end] <= 0:
            return []
        path = [end]
        while parent[path[-1]] >= 0:
            path.append(int(parent[path[-1]]))
        return path[::-1]

    def align(self, sim_map: np.ndarray) -> list[Box]:
        """Copied boxes of one [Q, R] similarity map, in frame units."""
        sim_map = np.asarray(sim_map, np.float64)
        query, ref, sim, gain = self._graph(sim_map)
        if len(sim) == 0:
            return []
        start = sim.copy()
        kept: list[Box] = []
        for _ in range(self.max_paths):
            path = self._longest_path(query, start, gain)
            if not path:
                break
            start[path] = 0.0
            gain[:, path] = np.minimum(gain[:, path], 0.0)
            q, r = query[path], ref[path]
            box = Box(
                float(q.min()),
                float(q.max() + 1),
                float(r.min()),
                float(r.max() + 1),
                float(sim[path].mean()),
            )
            if box.score >= self.min_sim and accepts(box, kept, self.min_length, self.max_iou):
                kept.append(box)
        return kept
