"""FIVR-style annotations and the relevance matrices of the evaluation protocols.

`annotation.json` maps each query to its labelled videos: `{query_id: {label: [video_ids]}}`.
FIVR-200K labels: ND (near-duplicate), DS (duplicate scene), CS (complementary scene), IS (incident
scene), DA (duplicate audio). A CC_WEB_VIDEO adapter writes the same shape with its labels
(E, S, L, M, V positive; X, -1 negative) and uses the CC_WEB protocols.

The CC_WEB protocols follow the original evaluation code (ndvr-dml, ViSiL): the query video is in
the database and in its own ground truth, so it is ranked like any other video (normally a
relevant hit at rank 1) instead of being skipped (`Protocol.include_query`). The FIVR protocols
skip the query.
"""

from __future__ import annotations

import dataclasses
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

import numpy as np

Annotation = dict[str, dict[str, list[str]]]


@dataclasses.dataclass(frozen=True)
class Protocol:
    """Which labels count as relevant, which videos are ranked.

    restrict_to_annotated: rank only the videos of the query's annotation (CC_WEB_VIDEO).
    include_query: rank the query itself too, relevant if its own annotation labels it so (the
      original CC_WEB_VIDEO evaluation); otherwise it is skipped (FIVR).
    """

    name: str
    labels: tuple[str, ...]
    restrict_to_annotated: bool = False
    include_query: bool = False


PROTOCOLS: dict[str, Protocol] = {
    p.name: p
    for p in (
        Protocol("DSVR", ("ND", "DS")),
        Protocol("CSVR", ("ND", "DS", "CS")),
        Protocol("ISVR", ("ND", "DS", "CS", "IS")),
        Protocol("DAVR", ("DA",)),
        # CC_WEB_VIDEO ranks only the query set's ground truth; CC_WEB_VIDEO* the whole database.
        # The query is ranked too, as the original evaluation does.
        Protocol(
            "CC_WEB", ("E", "S", "L", "M", "V"), restrict_to_annotated=True, include_query=True
        ),
        Protocol("CC_WEB*", ("E", "S", "L", "M", "V"), include_query=True),
    )
}


class Relevance(NamedTuple):
    """Relevance of a database for a list of queries, ready for `ndvr_jax.evaluation.metrics`."""

    relevance: np.ndarray  # [Q, N] bool: labelled relevant and rankable
    mask: np.ndarray  # [Q, N] bool: rankable (not the query itself, not excluded, ...)
    num_relevant: np.ndarray  # [Q] int: relevant videos in the database


def load_annotation(path: str | os.PathLike) -> Annotation:
    """Reads `annotation.json`, checking its shape `{query_id: {label: [video_ids]}}`.

    Raises ValueError naming the file (and line) if it is not valid JSON of that shape.
    """
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(
                f"{os.fspath(path)}:{e.lineno}: not valid JSON ({e.msg} at column {e.colno}); "
                "an annotation is {query_id: {label: [video_ids]}}"
            ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object of queries, got {type(data).__name__}")
    for query_id, labels in data.items():
        if not isinstance(labels, dict) or not all(
            isinstance(ids, list) and all(isinstance(i, str) for i in ids)
            for ids in labels.values()
        ):
            raise ValueError(f"{path}: query {query_id!r} must map labels to lists of video ids")
    return data


def get_protocol(spec: str | Sequence[str] | Protocol) -> Protocol:
    """A protocol by name ("DSVR", "CSVR", "ISVR", "DAVR", "CC_WEB", "CC_WEB*"), or from labels."""
    if isinstance(spec, Protocol):
        return spec
    if isinstance(spec, str):
        if spec not in PROTOCOLS:
            raise ValueError(
                f"unknown protocol {spec!r}; known: {sorted(PROTOCOLS)} or label lists"
            )
        return PROTOCOLS[spec]
    labels = tuple(spec)
    if not labels or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"labels must be a non-empty sequence of strings, got {spec!r}")
    return Protocol("+".join(labels), labels)


def _warn_unknown_labels(annotation: Annotation, protocol: Protocol) -> None:
    known = {label for labels in annotation.values() for label in labels}
    if known and not known.intersection(protocol.labels):
        warnings.warn(
            f"none of the labels {protocol.labels} occur in the annotation, which has "
            f"{sorted(known)}",
            stacklevel=3,
        )


def build_relevance(
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    query_ids: Sequence[str],
    db_ids: Sequence[str],
    protocol: str | Sequence[str] | Protocol,
    exclude: Mapping[str, Iterable[str]] | None = None,
) -> Relevance:
    """Relevance, rank mask and relevant counts of `db_ids` for each query in `query_ids`.

    Relevant = union of the protocol's labels, restricted to the database. The query itself is
    not ranked unless `protocol.include_query`; `exclude` removes more videos per query (the
    "clean" CC_WEB_VIDEO variants).
    Raises for queries missing from the annotation or duplicate database ids; warns (once per
    call) about annotated videos missing from the database and queries left with no relevant one.
    """
    protocol = get_protocol(protocol)
    missing = [q for q in query_ids if q not in annotation]
    if missing:
        raise ValueError(f"{len(missing)} queries have no annotation, e.g. {missing[:5]}")
    column = dict(zip(db_ids, range(len(db_ids)), strict=True))
    if len(column) != len(db_ids):
        raise ValueError("database ids are not unique")
    _warn_unknown_labels(dict(annotation), protocol)
    exclude = exclude or {}
    shape = (len(query_ids), len(db_ids))
    relevance, mask = np.zeros(shape, bool), np.ones(shape, bool)
    not_in_database = set()
    for row, query_id in enumerate(query_ids):
        labelled = annotation[query_id]
        relevant = {v for label in protocol.labels for v in labelled.get(label, ())}
        not_in_database |= {v for ids in labelled.values() for v in ids if v not in column}
        relevance[row, [column[v] for v in relevant if v in column]] = True
        if protocol.restrict_to_annotated:
            annotated = {v for ids in labelled.values() for v in ids}
            mask[row] = False
            mask[row, [column[v] for v in annotated if v in column]] = True
        skipped = set(exclude.get(query_id, ()))
        if not protocol.include_query:
            skipped.add(query_id)
        mask[row, [column[v] for v in skipped if v in column]] = False
    relevance &= mask
    num_relevant = relevance.sum(-1)
    if not_in_database:
        warnings.warn(
            f"{len(not_in_database)} annotated videos are not in the database and are ignored, "
            f"e.g. {sorted(not_in_database)[:5]}",
            stacklevel=2,
        )
    empty = [q for q, n in zip(query_ids, num_relevant, strict=True) if n == 0]
    if empty:
        warnings.warn(
            f"{len(empty)} queries have no {protocol.name} relevant video in the database and are "
            f"left out of the means, e.g. {empty[:5]}",
            stacklevel=2,
        )
    return Relevance(relevance, mask, num_relevant)


def copy_group_labels(
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    ids: Sequence[str],
    labels: Sequence[str] = ("ND", "DS"),
    max_relevant: int | None = None,
) -> np.ndarray:
    """[len(ids)] class per video: the connected groups of queries and their `labels` videos
    (numbered by first appearance in `ids`); videos in no group get -1. Queries with more than
    `max_relevant` such videos join no group."""
    parent: dict[str, str] = {}

    def root(v: str) -> str:
        while parent.setdefault(v, v) != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    for query, labelled in annotation.items():
        copies = {v for label in labels for v in labelled.get(label, ())}
        if max_relevant is not None and len(copies) > max_relevant:
            continue
        for v in sorted(copies):
            parent[root(v)] = root(query)
    numbers: dict[str, int] = {}
    out = np.full(len(ids), -1, np.int32)
    for i, v in enumerate(ids):
        if v in parent:
            out[i] = numbers.setdefault(root(v), len(numbers))
    return out
