"""Scores of localisation methods against ground-truth segments: VCSL segment P/R/F1 (+ FRR,
FAR), VSC segment AP, sources found / annotated, and segments on queries without a copy; on all
queries and on the compilations (queries with two or more annotated sources)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ndvr_jax.pdvr.formats import Segments, to_matches
from ndvr_jax.pdvr.metrics import source_detection, vcsl_segment_metric, vsc_segment_ap


def _pairs(segments: Segments) -> dict[tuple[str, str], list]:
    out: dict[tuple[str, str], list] = {}
    for q, segs in segments.items():
        for s in segs:
            out.setdefault((q, str(s.source)), []).append((s[0], s[1], s[3], s[4]))
    return out


def evaluate_segments(
    pred: Segments, truth: Segments, query_ids: Sequence[str], num_database: int
) -> dict[str, Any]:
    """All scores of one method on the queries `query_ids`."""
    pred = {q: pred.get(q, []) for q in query_ids}
    truth = {q: truth.get(q, []) for q in query_ids}
    gt_pairs = _pairs(truth)
    vcsl = vcsl_segment_metric(
        _pairs(pred), gt_pairs, len(query_ids) * num_database - len(gt_pairs)
    )
    vsc = vsc_segment_ap(to_matches(pred), to_matches(truth))
    sources = source_detection(
        {q: sorted({str(s.source) for s in v}) for q, v in pred.items()},
        {q: sorted({str(s.source) for s in v}) for q, v in truth.items()},
    )
    negatives = [q for q in query_ids if not truth[q]]
    return {
        "vcsl": vcsl,
        "vsc_ap": vsc["ap"],
        "sources": sources,
        "negative_queries": len(negatives),
        "negative_queries_with_segments": sum(bool(pred[q]) for q in negatives),
    }


def evaluate_methods(
    results: Mapping[str, Segments], truth: Segments, query_ids: Sequence[str], num_database: int
) -> dict[str, dict[str, Any]]:
    """`{subset: {method: scores}}` for the subsets "all" and "compilations"."""
    compilations = [q for q in query_ids if len({s.source for s in truth.get(q, [])}) >= 2]
    subsets = {"all": list(query_ids), "compilations": compilations}
    return {
        name: {m: evaluate_segments(r, truth, ids, num_database) for m, r in results.items()}
        for name, ids in subsets.items()
        if ids
    }


def format_table(scores: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """A plain-text table: one line per subset and method."""
    head = f"{'subset':<13}{'method':<7}{'F1':>6}{'P':>6}{'R':>6}{'FRR':>6}{'FAR':>7}{'VSC AP':>8}"
    lines = [head + f"{'sources':>9}{'neg.hit':>9}"]
    for subset, methods in scores.items():
        for method, s in methods.items():
            v, src = s["vcsl"], s["sources"]
            lines.append(
                f"{subset:<13}{method:<7}{v['f1']:6.3f}{v['precision']:6.3f}{v['recall']:6.3f}"
                f"{v['frr']:6.3f}{v['far']:7.4f}{s['vsc_ap']:8.3f}"
                f"{src['sources_found']:>5}/{src['sources_annotated']:<3}"
                f"{s['negative_queries_with_segments']:>5}/{s['negative_queries']:<3}"
            )
    return "\n".join(lines)


def markdown_table(scores: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> str:
    """One row per subset and method: VCSL segment F1 / precision / recall, VSC segment AP,
    sources found / annotated and the queries without a copy that got a segment."""
    lines = [
        "| queries | method | segment F1 | precision | recall | VSC AP | sources found "
        "| negative queries with segments |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for subset, methods in scores.items():
        for method, s in methods.items():
            v, src = s["vcsl"], s["sources"]
            lines.append(
                f"| {subset} | {method.upper()} | {v['f1']:.3f} | {v['precision']:.3f} "
                f"| {v['recall']:.3f} | {s['vsc_ap']:.3f} "
                f"| {src['sources_found']}/{src['sources_annotated']} "
                f"| {s['negative_queries_with_segments']}/{s['negative_queries']} |"
            )
    return "\n".join(lines)
