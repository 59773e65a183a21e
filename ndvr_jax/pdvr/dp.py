"""VCSL's dynamic-programming aligner (DP, after Chou et al.) on a query × reference map.

With gains G = S + 1, every cell takes the best of its three predecessors,
`D[i, j] = max(D[i-1, j-1] + G, D[i-1, j] + G/2, D[i, j-1] + G/2)`, and counts the consecutive
cells below `min_sim` on its chain; a predecessor whose chain would exceed `discontinue` of them
is not taken (no predecessor left: D = 0), and a cell below `min_sim` never starts a chain. The
aligner backtracks from the best cell, trims cells below `min_sim` off both ends, keeps the
bounding box if it is at least `min_length` frames on both sides, scores `min_sim` or more on
average and overlaps every kept box by IoU ≤ `max_iou`, blanks the box's region and repeats (at
most `max_paths` times). Cells on one anti-diagonal depend only on the two before it, so the sweep
is vectorised along anti-diagonals.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ndvr_jax.pdvr.boxes import Box, accepts

_START, _DIAG, _UP, _LEFT = 0, 1, 2, 3
_STEP = {_DIAG: (1, 1), _UP: (1, 0), _LEFT: (0, 1)}


@dataclasses.dataclass(frozen=True)
class DynamicProgramming:
    """DP aligner; `discontinue` is how many low cells a chain may cross in a row."""

    discontinue: int = 3
    min_sim: float = 0.3
    min_length: int = 5
    max_iou: float = 0.3
    max_paths: int = 10

    def _sweep(self, sim: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cumulative scores D and back-pointers, both [M + 1, N + 1] (row/column 0 empty)."""
        m, n = sim.shape
        score = np.zeros((m + 1, n + 1))
        count = np.zeros((m + 1, n + 1), np.int64)
        back = np.zeros((m + 1, n + 1), np.int8)
        weights = np.array([1.0, 0.5, 0.5])[:, None]
        for d in range(2, m + n + 1):
            i = np.arange(max(1, d - n), min(m, d - 1) + 1)
            j = d - i
            s = sim[i - 1, j - 1]
            low = s < self.min_sim
            pi = np.stack([i - 1, i - 1, i])  # predecessors: diagonal, up, left
            pj = np.stack([j - 1, j, j - 1])
            run = np.where(low, count[pi, pj] + 1, 0)
            ok = (score[pi, pj] > 0) & (run <= self.discontinue)
            value = np.where(ok, score[pi, pj] + weights * (s + 1.0), -np.inf)
            choice = np.argmax(value, axis=0)
            cells = np.arange(len(i))
            best = value[choice, cells]
            chained = np.isfinite(best)
            fresh = ~chained & ~low  # a chain starts here
            score[i, j] = np.where(chained, best, np.where(fresh, s + 1.0, 0.0))
            count[i, j] = np.where(chained, run[choice, cells], 0)
            back[i, j] = np.where(chained, choice + 1, _START)
        return score, back

    def _path(self, score: np.ndarray, back: np.ndarray, sim: np.ndarray) -> np.ndarray | None:
        """Cells [L, 2] (0-based map indices) of the best chain, low ends trimmed."""
        i, j = np.unravel_index(int(np.argmax(score)), score.shape)
        if score[i, j] <= 0:
            return None
        cells = [(i, j)]
        while back[i, j] != _START:
            di, dj = _STEP[int(back[i, j])]
            i, j = i - di, j - dj
            cells.append((i, j))
        cells = np.array(cells[::-1]) - 1
        high = np.flatnonzero(sim[cells[:, 0], cells[:, 1]] >= self.min_sim)
        return cells[high[0] : high[-1] + 1]

    def align(self, sim_map: np.ndarray) -> list[Box]:
        """Copied boxes of one [Q, R] similarity map, in frame units."""
        sim = np.array(sim_map, np.float64)
        if sim.size == 0:
            return []
        blank = min(float(sim.min()), self.min_sim) - 1.0
        kept: list[Box] = []
        for _ in range(self.max_paths):
            cells = self._path(*self._sweep(sim), sim)
            if cells is None:
                break
            (q0, r0), (q1, r1) = cells.min(0), cells.max(0) + 1
            box = Box(float(q0), float(q1), float(r0), float(r1), float(sim[tuple(cells.T)].mean()))
            if box.score >= self.min_sim and accepts(box, kept, self.min_length, self.max_iou):
                kept.append(box)
            sim[q0:q1, r0:r1] = blank
        return kept
