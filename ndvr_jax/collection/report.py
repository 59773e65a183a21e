"""The duplicates report: one self-contained HTML page (no server, no internet, no scripts).

Per group of duplicates: one card per video with a strip of thumbnails (JPEG, inline), its file
size, duration, resolution and codecs (to choose which copy to keep), and for every matched pair
its fused probability with the visual and audio evidence, and a timeline of the matched spans
(query time on one bar, matched source time on the other, drawn as inline SVG).
"""

from __future__ import annotations

import base64
import html
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image

from ndvr_jax.collection.resident import Index
from ndvr_jax.io.atomic import atomic_write
from ndvr_jax.io.video import VideoDecodeError, decode_video

THUMBNAILS = 4
THUMB_SIZE = 96
SPAN_SIMILARITY = 0.8  # a query frame is matched when its best frame similarity reaches this

_STYLE = """
body{font-family:sans-serif;margin:24px;color:#222}
.group{border:1px solid #ccc;border-radius:8px;padding:12px;margin:16px 0}
.video{display:inline-block;vertical-align:top;margin:6px 12px 6px 0;max-width:420px}
.strip img{width:96px;height:96px;margin-right:2px;border:1px solid #ddd}
.facts{font-size:12px;color:#555}
table{border-collapse:collapse;font-size:13px;margin-top:8px}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left}
"""


def thumbnails(path: str, count: int = THUMBNAILS) -> list[str]:
    """`count` evenly spaced frames of a video as data-URI JPEGs (none if it cannot be read)."""
    try:
        decoded = decode_video(path, fps=1.0, size=THUMB_SIZE, min_coverage=0.0)
    except (VideoDecodeError, OSError, ValueError):
        return []
    picks = np.linspace(0, len(decoded.frames) - 1, min(count, len(decoded.frames))).astype(int)
    out = []
    for frame in decoded.frames[picks]:
        buffer = io.BytesIO()
        Image.fromarray(frame).save(buffer, format="JPEG", quality=70)
        out.append("data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode())
    return out


def matched_spans(
    query: np.ndarray,
    source: np.ndarray,
    query_times: Sequence[float],
    source_times: Sequence[float],
    threshold: float = SPAN_SIMILARITY,
) -> list[tuple[float, float, float, float]]:
    """`(query_start, query_end, source_start, source_end)` seconds of runs of consecutive query
    frames whose best cosine similarity to a source frame reaches `threshold`."""
    unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = unit(query) @ unit(source).T
    best, where = sim.max(axis=1), sim.argmax(axis=1)
    spans, start = [], None
    for t in range(len(best) + 1):
        hit = t < len(best) and best[t] >= threshold
        if hit and start is None:
            start = t
        if not hit and start is not None:
            matched = where[start:t]
            q_span = (float(query_times[start]), float(query_times[t - 1]))
            s_span = (float(source_times[matched.min()]), float(source_times[matched.max()]))
            spans.append(q_span + s_span)
            start = None
    return spans


def _timeline(spans, query_length: float, source_length: float) -> str:
    """Two bars (query above, source below) with the matched spans and lines joining them."""
    width, scale_q = 400, 400 / max(query_length, 1e-6)
    scale_s = 400 / max(source_length, 1e-6)
    parts = [f'<svg class="timeline" width="{width + 2}" height="46" role="img">',
             f'<rect x="1" y="4" width="{width}" height="10" fill="#eee"/>',
             f'<rect x="1" y="32" width="{width}" height="10" fill="#eee"/>']  # fmt: skip
    for q0, q1, s0, s1 in spans:
        qx, qw = 1 + q0 * scale_q, max(2.0, (q1 - q0 + 1) * scale_q)
        sx, sw = 1 + s0 * scale_s, max(2.0, (s1 - s0 + 1) * scale_s)
        parts += [
            f'<rect class="span" x="{qx:.1f}" y="4" width="{qw:.1f}" height="10" fill="#d62728"/>',
            f'<rect x="{sx:.1f}" y="32" width="{sw:.1f}" height="10" fill="#1f77b4"/>',
            f'<line x1="{qx:.1f}" y1="14" x2="{sx:.1f}" y2="32" stroke="#999"/>',
        ]
    return "".join(parts) + "</svg>"


def _video_card(index: Index, video_id: str) -> str:
    record = next(r for r in index.records if r.id == video_id)
    meta = index.visual.load_meta(video_id)
    facts = [f"{record.size / 2**20:.2f} MiB", f"{record.duration or 0:.1f} s",
             meta.get("codec", ""), meta.get("container", ""),
             f"audio: {record.streams.get('audio', 'none')}"]  # fmt: skip
    images = "".join(f'<img src="{src}" alt="">' for src in thumbnails(record.path))
    return (
        f'<div class="video" data-id="{html.escape(video_id)}"><b>{html.escape(video_id)}</b>'
        f'<div class="strip">{images}</div><div class="facts">{html.escape(" · ".join(facts))}'
        f"<br>{html.escape(record.path)}</div></div>"
    )


def _pair_rows(index: Index, group: Sequence[str], results: Mapping[str, Any]) -> str:
    rows = []
    members = set(group)
    for query in group:
        for match in results.get(query, ()):
            if not match["copy"] or match["id"] not in members or match["id"] < query:
                continue
            q_meta, s_meta = index.visual.load_meta(query), index.visual.load_meta(match["id"])
            spans = matched_spans(index.visual.load(query), index.visual.load(match["id"]),
                                  q_meta["timestamps"], s_meta["timestamps"])  # fmt: skip
            audio = (
                "–"
                if match["audio"] is None
                else f"{match['audio']:.3f} (p {match['p_audio']:.2f})"
            )
            if match.get("landmarks"):
                offset = match["audio_offset_s"]
                audio += f"<br>{match['landmarks']} landmark hits, sound at {offset:+.1f} s"
            timeline = _timeline(spans, q_meta.get("duration", 1.0), s_meta.get("duration", 1.0))
            rows.append(
                f"<tr><td>{html.escape(query)} ↔ {html.escape(match['id'])}</td>"
                f"<td class='probability'>{match['probability']:.3f}</td>"
                f"<td>{match['visual']:.3f} (p {match['p_visual']:.2f})</td><td>{audio}</td>"
                f"<td>{timeline}</td></tr>"
            )
    header = (
        "<tr><th>pair</th><th>copy probability</th><th>visual evidence</th><th>audio evidence"
        "</th><th>matched spans (query above, match below)</th></tr>"
    )
    return f"<table>{header}{''.join(rows)}</table>"


def write_report(
    index: Index,
    results: Mapping[str, Sequence[Mapping[str, Any]]],
    groups: Sequence[Sequence[str]],
    path: str | os.PathLike,
) -> None:
    """Writes the report of `groups` (from `ndvr_jax.jobs.query.duplicate_groups`)."""
    cards = []
    for number, group in enumerate(groups, 1):
        videos = "".join(_video_card(index, v) for v in group)
        cards.append(
            f'<section class="group" id="group-{number}"><h2>Group {number}: '
            f"{len(group)} videos</h2>{videos}{_pair_rows(index, group, results)}</section>"
        )
    body = "".join(cards) or "<p class='empty'>No duplicates found.</p>"
    page = (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Duplicates report</title>"
        f"<style>{_STYLE}</style></head><body><h1>Duplicates report</h1>"
        f"<p>{len(groups)} groups of duplicates among {len(index.records)} indexed videos.</p>"
        f"{body}</body></html>"
    )
    with atomic_write(path) as f:
        f.write(page)
