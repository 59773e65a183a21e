"""Ground truth derived from the plan: FIVR-style labels and copied spans.

Labels of a database video for a query (`annotation.json`, `{query: {label: [ids]}}`):
- ND: the query is a visual copy of the whole video (any spatial / colour / speed / frame-rate
  change, picture-in-picture included);
- DS: the query copies only part of it (sub-clip, a span in a compilation), or the database
  video contains the very shot that the query copies (a `related` DS video);
- CS: a related video shows a copied shot's moment from another viewpoint or framing;
- IS: a related video shows the same event (clip) as a copied shot, at another moment;
- DA: the query's sound contains a span of the video's sound (kept copies, audio-only copies,
  compilation spans).
A video gets the strongest visual label that applies (ND > DS > CS > IS) and, independently, DA.
"""

from __future__ import annotations

from typing import Any

Spec = dict[str, Any]
VISUAL_LABELS = ("ND", "DS", "CS", "IS")
LABELS = (*VISUAL_LABELS, "DA")
MIN_OVERLAP = 0.5  # seconds a copied span must share with a related shot to count
FULL_COPY = 0.95  # fraction of a source a copy must span to be a near-duplicate


def _copies(segments: list[Spec] | None) -> list[tuple[float, float, Spec]]:
    """(query_start, query_end, segment) of the copy segments of a segment list."""
    out, t = [], 0.0
    for seg in segments or ():
        if seg["type"] == "copy":
            out.append((t, t + seg["duration"], seg))
        t += seg["duration"]
    return out


def _overlap(a: tuple[float, float], b: tuple[float, float]) -> float:
    return max(0.0, min(a[1], b[1]) - max(a[0], b[0]))


def annotation(videos: dict[str, Spec]) -> dict[str, dict[str, list[str]]]:
    """`{query_id: {label: sorted database ids}}` for every query (labels in `LABELS` order)."""
    related = [(vid, v["relation"]) for vid, v in videos.items() if "relation" in v]
    out = {}
    for qid, q in videos.items():
        if q["role"] != "query":
            continue
        best: dict[str, int] = {}  # database id -> rank of its strongest visual label
        visual = _copies(q["visual"])
        for _, _, seg in visual:
            src = videos[seg["source"]]
            span = (seg["source_start"], seg["source_end"])
            full = len(q["visual"]) == 1 and span[1] - span[0] >= FULL_COPY * src["duration"]
            found = [(seg["source"], "ND" if full else "DS")]
            found += [
                (vid, rel["label"])
                for vid, rel in related
                if rel["to"] == seg["source"]
                and any(_overlap(span, scene) >= MIN_OVERLAP for scene in rel["scene_spans"])
            ]
            for vid, label in found:
                best[vid] = min(best.get(vid, 99), VISUAL_LABELS.index(label))
        labels: dict[str, set[str]] = {label: set() for label in LABELS}
        for vid, rank in best.items():
            labels[VISUAL_LABELS[rank]].add(vid)
        labels["DA"] = {seg["source"] for _, _, seg in _copies(q["audio"])}
        out[qid] = {label: sorted(ids) for label, ids in labels.items() if ids}
    return out


def segments(videos: dict[str, Spec]) -> list[dict[str, Any]]:
    """Every copied span of every query: where it is in the query, where it comes from, and
    whether the pictures, the sound or both were copied (`modality`)."""
    spans: dict[tuple, set[str]] = {}
    for qid, q in videos.items():
        if q["role"] != "query":
            continue
        for modality, segs in (("video", q["visual"]), ("audio", q["audio"])):
            for start, end, seg in _copies(segs):
                key = (qid, round(start, 6), round(end, 6), seg["source"])
                key += (seg["source_start"], seg["source_end"])
                spans.setdefault(key, set()).add(modality)
    names = ("query", "query_start", "query_end", "source", "source_start", "source_end")
    return [
        {**dict(zip(names, key, strict=True)), "modality": "+".join(sorted(m, reverse=True))}
        for key, m in sorted(spans.items())
    ]
