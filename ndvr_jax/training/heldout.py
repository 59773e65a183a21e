"""Held-out videos for self-supervised training: which videos validation keeps apart, and the
mAP of views ranking them (one relevant video per view)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def validation_split(ids: Sequence[str], every: int) -> tuple[list[str], list[str]]:
    """(training ids, held-out ids): every `every`-th of the sorted ids is held out."""
    ordered = sorted(ids)
    held = {v for i, v in enumerate(ordered) if every > 0 and i % every == every - 1}
    return [v for v in ordered if v not in held], [v for v in ordered if v in held]


def retrieval_map(matrix: np.ndarray, relevant: Sequence[int]) -> float:
    """mAP of `[Q, N]` scores with one relevant column per query: mean of 1 / its rank (ties
    ranked pessimistically)."""
    own = matrix[np.arange(len(relevant)), relevant]
    return float(np.mean(1.0 / np.sum(matrix >= own[:, None], axis=1)))
