"""Localisation outputs and ground truth on disk.

* segments JSON (the toolkit's format, as the demo's `segments.json`): a list of
  `{query, query_start, query_end, source, source_start, source_end, score}` in seconds;
* VSC2022 matching-track CSV: `query_id,ref_id,query_start,query_end,ref_start,ref_end,score`;
* VCSL per-pair box JSON: `{"<query>-<reference>": [[query_start, ref_start, query_end, ref_end],
  ...]}` in seconds.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping, Sequence

from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.pdvr.metrics import Match
from ndvr_jax.pdvr.segments import Segment

Segments = Mapping[str, Sequence[Segment]]  # query id -> its segments (source = source id)
VSC_COLUMNS = Match._fields


def to_matches(segments: Segments) -> list[Match]:
    """VSC rows of every query's segments."""
    return [Match(q, str(s.source), *s[:2], *s[3:6]) for q, segs in segments.items() for s in segs]


def save_segments_json(path: str | os.PathLike, segments: Segments) -> None:
    rows = [{"query": q, **s._asdict()} for q, segs in segments.items() for s in segs]
    save_json_atomic(path, rows)


def save_vsc_csv(path: str | os.PathLike, segments: Segments) -> None:
    with atomic_write(path) as f:
        writer = csv.writer(f)
        writer.writerow(VSC_COLUMNS)
        writer.writerows(to_matches(segments))


def save_vcsl_boxes(path: str | os.PathLike, segments: Segments) -> None:
    boxes: dict[str, list[list[float]]] = {}
    for m in to_matches(segments):
        box = [m.query_start, m.ref_start, m.query_end, m.ref_end]
        boxes.setdefault(f"{m.query_id}-{m.ref_id}", []).append(box)
    save_json_atomic(path, boxes)


def load_segments_json(
    path: str | os.PathLike, modality: str = "video"
) -> dict[str, list[Segment]]:
    """Segments per query from a segments JSON; rows with a `modality` field (the demo's ground
    truth) are kept only if it names `modality` ("" keeps all)."""
    with open(path) as f:
        rows = json.load(f)
    out: dict[str, list[Segment]] = {}
    for row in rows:
        if modality and modality not in row.get("modality", modality).split("+"):
            continue
        fields = [row[k] for k in Segment._fields[:5]]
        out.setdefault(row["query"], []).append(Segment(*fields, float(row.get("score", 1.0))))
    return out
