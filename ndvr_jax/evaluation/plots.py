"""PNG plots of evaluation results: precision-recall curves and similarity-matrix heatmaps.

Figures are drawn on matplotlib's Agg canvas (no display, no pyplot state) and written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ndvr_jax.io.atomic import atomic_write

MAX_TICK_LABELS = 40


def _new_figure(size: tuple[float, float]) -> Figure:
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _save(figure: Figure, path: str | os.PathLike, dpi: int) -> None:
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=dpi)


def plot_pr_curves(
    systems: Mapping[str, Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str = "Precision-recall",
    dpi: int = 100,
) -> None:
    """One PNG with the PR curve of every system.

    Each value is an `evaluate` result (its mAP goes in the legend) or its `pr_curve` dict
    `{"recall": [...], "precision": [...]}`.
    """
    if not systems:
        raise ValueError("no PR curves to plot")
    figure = _new_figure((5.5, 4.5))
    axes = figure.add_subplot()
    for name, result in systems.items():
        curve = result.get("pr_curve", result)
        recall, precision = np.asarray(curve["recall"]), np.asarray(curve["precision"])
        if recall.shape != precision.shape or recall.ndim != 1:
            raise ValueError(f"{name}: recall and precision must be 1-d of equal length")
        label = f"{name} (mAP {result['mAP']:.3f})" if "mAP" in result else name
        axes.plot(recall, precision, marker="o", markersize=3, label=label)
    axes.set(xlabel="recall", ylabel="precision", title=title, xlim=(0, 1.02), ylim=(0, 1.02))
    axes.grid(alpha=0.3)
    axes.legend(loc="lower left")
    _save(figure, path, dpi)


def plot_similarity_matrix(
    matrix: np.ndarray,
    path: str | os.PathLike,
    *,
    row_labels: Sequence[str] | None = None,
    col_labels: Sequence[str] | None = None,
    title: str = "Similarity",
    value_range: tuple[float, float] | None = None,
    dpi: int = 100,
) -> None:
    """Heatmap PNG of a [Q, N] similarity matrix (tick labels when there are few rows/columns)."""
    matrix = np.asarray(matrix, np.float32)
    if matrix.ndim != 2 or matrix.size == 0:
        raise ValueError(f"need a non-empty 2-d matrix, got shape {matrix.shape}")
    height, width = matrix.shape
    figure = _new_figure((min(4 + width / 8, 16), min(3 + height / 8, 16)))
    axes = figure.add_subplot()
    vmin, vmax = value_range or (None, None)
    image = axes.imshow(
        matrix, cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest"
    )
    figure.colorbar(image, ax=axes)
    for labels, size, set_ticks in (
        (row_labels, height, axes.set_yticks),
        (col_labels, width, axes.set_xticks),
    ):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{len(labels)} labels for {size} rows/columns")
        if labels is not None and size <= MAX_TICK_LABELS:
            set_ticks(range(size), labels=labels, fontsize=7)
    axes.tick_params(axis="x", labelrotation=90)
    axes.set(title=title, xlabel="database", ylabel="query")
    _save(figure, path, dpi)
