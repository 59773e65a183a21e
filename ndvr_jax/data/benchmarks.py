"""Benchmarks with queries: the videos in feature-row order and the evaluation ground truth.

Readers for CC_WEB_VIDEO (pickle or raw files), FIVR-style annotations with query / database id
lists, and the toolkit's generic dataset JSON, shared by triplet generation, training and
evaluation.
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

from ndvr_jax.data.annotations import Annotation, load_annotation
from ndvr_jax.data.datasets import (
    CCWebVideo,
    DatasetError,
    GenericDataset,
    load_cc_web_pickle,
    load_generic_dataset,
    read_cc_web_raw,
)
from ndvr_jax.data.datasets.generic import preview_ids

DATASETS = ("vcdb", "cc_web_video", "annotation", "generic")
DEFAULT_PATHS = {"vcdb": "datasets/vcdb.pickle", "cc_web_video": "datasets/cc_web_video.pickle"}


@dataclasses.dataclass(frozen=True)
class Benchmark:
    """Videos in feature-row order, and (when it has queries) the evaluation ground truth."""

    name: str
    video_ids: list[str]  # row i of `<name>_features.npy`; "" = a placeholder row
    query_ids: list[str]
    database_ids: list[str]
    annotation: Annotation  # {query: {label: [video ids]}}
    protocols: tuple[str, ...]  # the default evaluation protocols
    exclude: dict[str, list[str]] | None = None  # per query, dropped by the "clean" variants


def read_id_list(path: str | os.PathLike) -> list[str]:
    """Video ids of a list file: `<id>` or `<id>\\t<path>` lines (blank and `#` lines skipped)."""
    if not Path(path).is_file():
        raise DatasetError(f"id list {os.fspath(path)} does not exist")
    ids: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip() and not line.lstrip().startswith("#"):
                ids.append(line.split("\t")[0].split()[0])
    duplicates = sorted(v for v, n in collections.Counter(ids).items() if n > 1)
    if duplicates:
        raise DatasetError(f"{os.fspath(path)}: ids listed twice: {preview_ids(duplicates)}")
    return ids


def cc_web_benchmark(dataset: CCWebVideo) -> Benchmark:
    """CC_WEB_VIDEO: 24 seed queries against every video (the seeds included, as the original)."""
    exclude = dataset.excluded_ids()
    return Benchmark(
        name="cc_web_video",
        video_ids=list(dataset.video_ids),
        query_ids=[dataset.video_ids[q] for q in dataset.queries],
        database_ids=[v for v in dataset.video_ids if v],
        annotation=dataset.annotation(),
        protocols=("CC_WEB", "CC_WEB*"),
        exclude=exclude if any(exclude.values()) else None,
    )


def annotation_benchmark(
    annotation: Annotation,
    query_ids: Sequence[str] | None = None,
    database_ids: Sequence[str] | None = None,
    available: Sequence[str] | None = None,
    protocols: tuple[str, ...] = ("DSVR", "CSVR", "ISVR"),
) -> Benchmark:
    """A FIVR-style benchmark: rows are the queries, then the database videos (each id once).

    Queries default to the annotated ones; the database to every `available` id (e.g. the
    feature list) that is not a query.
    """
    queries = list(annotation) if query_ids is None else list(query_ids)
    unknown = [q for q in queries if q not in annotation]
    if unknown:
        raise DatasetError(
            f"{len(unknown)} queries are not in the annotation: {preview_ids(unknown)}"
        )
    if database_ids is None:
        if available is None:
            raise DatasetError("give the database videos (--database) or a feature list")
        database_ids = [v for v in available if v not in set(queries)]
    database = list(database_ids)
    return Benchmark(
        name="annotation",
        video_ids=list(dict.fromkeys([*queries, *database])),
        query_ids=queries,
        database_ids=database,
        annotation={q: annotation[q] for q in queries},
        protocols=protocols,
    )


def generic_benchmark(dataset: GenericDataset, split: str | None) -> Benchmark:
    """A split of a generic dataset: its queries (default: every grouped video of the split)
    against the whole split; relevant = the other members of the query's group (label "G")."""
    rows = dataset.split_indices(split)
    split_ids = [dataset.video_ids[i] for i in rows]
    queries = dataset.queries.get(split or "", [])
    if not queries:
        queries = [v for v, i in zip(split_ids, rows, strict=True) if dataset.groups[i] >= 0]
    return Benchmark(
        name=dataset.name,
        video_ids=list(dataset.video_ids),
        query_ids=list(queries),
        database_ids=split_ids,
        annotation={q: {"G": sorted(dataset.relevant(q))} for q in queries},
        protocols=("G",),
    )


def load_benchmark(
    dataset: str,
    path: str | None,
    *,
    queries: str | None = None,
    database: str | None = None,
    split: str | None = None,
    available: Sequence[str] | None = None,
) -> tuple[Benchmark, CCWebVideo | GenericDataset | None]:
    """Reads a benchmark with queries ("cc_web_video", "annotation" or "generic") from its file
    (`path`; CC_WEB_VIDEO defaults to the original's `datasets/cc_web_video.pickle`), with
    `queries`/`database` id lists for annotations; also returns the dataset object read."""
    path = path or DEFAULT_PATHS.get(dataset)
    if dataset not in ("cc_web_video", "annotation", "generic"):
        raise ValueError(f"no evaluation queries in dataset {dataset!r}")
    if not path:
        raise DatasetError(f"a dataset path is required for {dataset}")
    if not os.path.exists(path):
        raise DatasetError(f"dataset file {path} does not exist")
    if dataset == "cc_web_video":
        cc_web = read_cc_web_raw(path) if os.path.isdir(path) else load_cc_web_pickle(path)
        return cc_web_benchmark(cc_web), cc_web
    if dataset == "generic":
        generic = load_generic_dataset(path)
        return generic_benchmark(generic, split), generic
    bench = annotation_benchmark(
        load_annotation(path),
        read_id_list(queries) if queries else None,
        read_id_list(database) if database else None,
        available=available,
    )
    return bench, None


def read_row_ids(path: str | os.PathLike) -> list[str]:
    """The ids of `<name>_ids.txt` (one a line; an empty line is a placeholder row)."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]
