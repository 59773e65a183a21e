"""Retrieval evaluation of similarity results against an annotation, and comparison tables.

`evaluate` follows the FIVR-200K protocol (DESIGN §3): per query, the database is ranked by
similarity; whether the query itself is ranked, and which videos are, depends on the protocol
(`ndvr_jax.data.annotations.PROTOCOLS`: the FIVR protocols skip the query, the CC_WEB ones rank
it and CC_WEB ranks only the query set's ground truth); AP counts relevant videos without a score
as never retrieved; mAP is over queries with at least one relevant video in the database;
annotated queries missing from the results are ignored with a warning. Ties rank by database
order (see `ndvr_jax.evaluation.metrics`). The metrics never sort the database (see
`metrics.chunked_query_metrics`), so evaluating FIVR-200K-sized results takes well under a second.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ndvr_jax.data.annotations import Protocol, build_relevance, get_protocol
from ndvr_jax.evaluation import metrics

SimilarityMatrix = tuple[np.ndarray, Sequence[str], Sequence[str]]


def dict_to_matrix(
    similarities: Mapping[str, Mapping[str, float]], db_ids: Sequence[str] | None
) -> tuple[np.ndarray, list[str], list[str]]:
    """[Q, N] scores (NaN = no score) of a similarity dict, its query ids and database ids."""
    if db_ids is None:
        db_ids = list(dict.fromkeys(v for row in similarities.values() for v in row))
    column = {video_id: n for n, video_id in enumerate(db_ids)}
    scores = np.full((len(similarities), len(db_ids)), np.nan, np.float32)
    unknown = 0
    for row, results in enumerate(similarities.values()):
        columns = np.fromiter((column.get(v, -1) for v in results), np.int64, len(results))
        values = np.fromiter(results.values(), np.float32, len(results))
        known = columns >= 0
        unknown += int(np.sum(~known))
        scores[row, columns[known]] = values[known]
    if unknown:
        warnings.warn(f"{unknown} results name videos outside the database; ignored", stacklevel=3)
    return scores, list(similarities), list(db_ids)


def evaluate(
    similarities: Mapping[str, Mapping[str, float]] | SimilarityMatrix,
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    labels: str | Sequence[str] | Protocol = "DSVR",
    *,
    db_ids: Sequence[str] | None = None,
    exclude: Mapping[str, Iterable[str]] | None = None,
    k: int | None = None,
    chunk_size: int | str | None = "auto",
) -> dict[str, Any]:
    """mAP, per-query AP, µAP and the interpolated PR curve of similarity results.

    Args:
      similarities: `{query_id: {db_id: similarity}}`, or `(matrix [Q, N], query_ids, db_ids)`
        where NaN marks a pair without a score.
      annotation: `{query_id: {label: [video_ids]}}` (`ndvr_jax.data.annotations`).
      labels: a protocol name ("DSVR", "CSVR", "ISVR", "DAVR", "CC_WEB", "CC_WEB*"), a list of
        labels, or a `Protocol`.
      db_ids: the database for dict results (default: every video id in the results).
      exclude: per query, videos never ranked (the "clean" CC_WEB_VIDEO variants).
      k: also report mAP@k.
      chunk_size: queries per block (bounds memory for large databases; "auto": about 4M
        pairs a block, `metrics.PAIRS_PER_BLOCK`).

    Returns a JSON-ready dict: protocol, labels, mAP, uAP, AP {query: AP}, pr_curve {recall,
    precision}, num_queries, and the query ids left out (missing / without relevant videos).
    """
    protocol = get_protocol(labels)
    if isinstance(similarities, tuple):
        if db_ids is not None:
            raise ValueError("db_ids come with the matrix; do not pass them separately")
        scores, query_ids, db_ids = similarities
        scores = np.asarray(scores, np.float32)
        if scores.shape != (len(query_ids), len(db_ids)):
            raise ValueError(f"matrix {scores.shape} does not match the ids")
    else:
        scores, query_ids, db_ids = dict_to_matrix(similarities, db_ids)
    rows = [n for n, q in enumerate(query_ids) if q in annotation]
    if len(rows) < len(query_ids):
        unannotated = len(query_ids) - len(rows)
        warnings.warn(f"{unannotated} result queries are not annotated; ignored", stacklevel=2)
    query_ids = [query_ids[n] for n in rows]
    missing = sorted(set(annotation) - set(query_ids))
    if missing:
        warnings.warn(
            f"{len(missing)} annotated queries are missing from the results; ignored, e.g. "
            f"{missing[:5]}",
            stacklevel=2,
        )
    if not query_ids:
        raise ValueError("no annotated query has results")
    if len(rows) < len(scores):
        scores = scores[rows]
    relevance = build_relevance(annotation, query_ids, db_ids, protocol, exclude)
    num_relevant = relevance.num_relevant
    inputs = (scores, relevance.relevance, relevance.mask & ~np.isnan(scores), num_relevant)
    per_query = metrics.chunked_query_metrics(*inputs, k=k, chunk_size=chunk_size)
    has_relevant = num_relevant > 0
    result = {
        "protocol": protocol.name,
        "labels": list(protocol.labels),
        "mAP": float(metrics.mean_over_queries(per_query.average_precision, num_relevant)),
        "uAP": per_query.micro_average_precision,
        "AP": {
            q: float(ap)
            for q, ap, ok in zip(query_ids, per_query.average_precision, has_relevant, strict=True)
            if ok
        },
        "pr_curve": {
            "recall": metrics.RECALL_LEVELS.tolist(),
            "precision": np.asarray(
                metrics.mean_over_queries(per_query.interpolated_precision, num_relevant)
            ).tolist(),
        },
        "num_queries": int(has_relevant.sum()),
        "missing_queries": missing,
        "queries_without_relevant": [
            q for q, ok in zip(query_ids, has_relevant, strict=True) if not ok
        ],
    }
    if k is not None:
        result[f"mAP@{k}"] = float(
            metrics.mean_over_queries(per_query.average_precision_at_k, num_relevant)
        )
    return result


def _lookup(result: Mapping[str, Any], column: str) -> Any:
    value: Any = result
    for key in column.split("/"):
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def format_table(
    results: Mapping[str, Mapping[str, Any]], columns: Sequence[str] = ("mAP", "uAP")
) -> str:
    """Plain-text table with one row per system; "a/b" columns read nested results.

    E.g. `format_table({"baseline": {"DSVR": r1, "CSVR": r2}, "DML": {...}},
    ["DSVR/mAP", "CSVR/mAP"])`. Numbers print with 4 decimals, missing values as "-".
    """
    cell = lambda v: "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)
    header = ["system", *columns]
    body = [[name, *(cell(_lookup(r, c)) for c in columns)] for name, r in results.items()]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = [row[0].ljust(widths[0])]
        cells += [v.rjust(w) for v, w in zip(row[1:], widths[1:], strict=True)]
        return "  ".join(cells)

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, body)])
