"""Timeline PNG of one query: one row per method (and the ground truth) with a bar per copied
segment, one colour (and lane) per source, and the similarity to each candidate drawn under it."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ndvr_jax.io.atomic import atomic_write
from ndvr_jax.pdvr.segments import Segment


def plot_timeline(
    path: str | os.PathLike,
    query_id: str,
    rows: Mapping[str, Sequence[Segment]],
    times: np.ndarray,
    similarity: Mapping[str, np.ndarray],
    dpi: int = 100,
) -> None:
    """`rows`: method name → segments in seconds; `similarity`: source id → best frame
    similarity [T] of each query frame to that source (at `times`)."""
    figure = Figure(figsize=(9, 1.2 + 0.45 * len(rows) + 1.8), layout="constrained")
    FigureCanvasAgg(figure)
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=[max(len(rows), 1), 2])
    sources = sorted({str(s.source) for segs in rows.values() for s in segs} | set(similarity))
    colours = {s: f"C{i % 10}" for i, s in enumerate(sources)}
    for y, segments in enumerate(rows.values()):
        lanes = sorted({str(s.source) for s in segments})  # sources side by side in a row
        band = 0.8 / max(len(lanes), 1)
        for s in segments:
            lane = lanes.index(str(s.source))
            top.barh(
                y - 0.4 + band * (lane + 0.5),
                s.query_end - s.query_start,
                left=s.query_start,
                height=band * 0.9,
                color=colours[str(s.source)],
            )
    top.set_yticks(range(len(rows)), labels=list(rows))
    top.invert_yaxis()
    top.set_title(f"{query_id}: copied segments (colour = source)")
    for source, values in similarity.items():
        bottom.plot(times, values, color=colours[source], label=source, linewidth=1)
    bottom.set(xlabel="query time (s)", ylabel="similarity")
    if similarity:
        bottom.legend(loc="upper right", fontsize=7, ncols=min(len(similarity), 5))
    with atomic_write(path, "wb") as f:
        figure.savefig(f, format="png", dpi=dpi)
