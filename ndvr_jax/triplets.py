"""Triplet generation binary (the original's `triplet_generator.py`), and the benchmark readers
that training and evaluation share.

    python -m ndvr_jax.triplets --dataset=vcdb \\
        --feature_files=vcdb_feature_files.txt --output_dir=output_data/
    python -m ndvr_jax.triplets --dataset=cc_web_video \\
        --feature_files=cc_web_video_feature_files.txt --output_dir=output_data/
    python -m ndvr_jax.triplets --dataset=annotation --dataset_path=annotation.json \\
        --queries=queries.txt --database=database.txt \\
        --feature_files=feature_files.txt --output_dir=output_data/ [--positive_labels=ND,DS]
    python -m ndvr_jax.triplets --dataset=generic --dataset_path=dataset.json --split=train \\
        --feature_files=feature_files.txt --output_dir=output_data/

`--feature_files` has `<video_id>\\t<path.npy>` lines (`[n_frames, D]` per video). Datasets:
  vcdb          `vcdb.pickle` (default `datasets/vcdb.pickle`), or a folder of raw VCDB annotation
                CSVs (durations from the frame counts at `--fps`; every listed video that is not
                annotated is a distractor).
  cc_web_video  `cc_web_video.pickle` (default `datasets/cc_web_video.pickle`), or the folder of
                the raw files (`Seed.txt`, `Video_List.txt`, `GT/GT_<q>.rst`).
  annotation    a FIVR-style `annotation.json` with `--queries`/`--database` id lists (default:
                the annotated queries; every other listed video). Positives: the query and its
                videos with a `--positive_labels` label; negatives: its videos with a
                `--negative_labels` label, or, when none are given, the database videos it does not
                label at all.
  generic       the toolkit's dataset JSON (`ndvr_jax.data.datasets.generic`); one query set per
                group of `--split`.
Pickles are read only through the restricted unpickler (`ndvr_jax.data.safe_pickle`).

Outputs in `--output_dir` (`<name>` = `--name`, default the dataset's):
  `<name>_features.npy`  [N, D] global vectors, row i = video i of the dataset (the original's)
  `<name>_triplets.npy`  [T, 3] int64 (anchor, positive, negative) rows (the original's)
  `<name>_ids.txt`       the video id of each row
  `<name>_groups.npy`    [N] int64 group label of each row for in-batch mining: >= 0 a group
                         of near-duplicates, -1 none (a negative of everything), -2 left out
                         (`group_labels_*` below say how each dataset's groups are formed)
"""

from __future__ import annotations

import collections
import dataclasses
import os
import sys
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
from absl import app, flags, logging

from ndvr_jax.data import triplets as rules
from ndvr_jax.data.annotations import Annotation, load_annotation
from ndvr_jax.data.datasets import (
    VCDB,
    CCWebVideo,
    DatasetError,
    GenericDataset,
    load_cc_web_pickle,
    load_generic_dataset,
    load_vcdb_pickle,
    read_cc_web_raw,
    read_vcdb_annotations,
    vcdb_from_annotations,
)
from ndvr_jax.data.datasets.cc_web import POSITIVE_LABELS
from ndvr_jax.data.datasets.generic import preview_ids
from ndvr_jax.data.feature_lists import FeatureError, read_feature_list
from ndvr_jax.dml_training import LEFT_OUT
from ndvr_jax.io.atomic import atomic_write, save_npy_atomic

__all__ = [
    "DATASETS",
    "Benchmark",
    "annotation_benchmark",
    "annotation_groups",
    "cc_web_benchmark",
    "cc_web_groups",
    "generate",
    "generic_benchmark",
    "load_benchmark",
    "read_row_ids",
    "read_id_list",
    "unlabelled_query_sets",
    "vcdb_groups",
]

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


# ---------------------------------------------------------------------------------------------
# Group labels for in-batch mining.


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[int, int] = {}

    def find(self, x: int) -> int:
        self.parent.setdefault(x, x)
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        self.parent[self.find(a)] = self.find(b)

    def labels(self, n: int) -> np.ndarray:
        out = np.full(n, -1, np.int64)
        roots: dict[int, int] = {}
        for x in sorted(self.parent):
            out[x] = roots.setdefault(self.find(x), len(roots))
        return out


def vcdb_groups(dataset: VCDB, threshold: float = 0.8) -> np.ndarray:
    """Connected components of the positive pairs (overlap > threshold in both); others -1."""
    groups = _UnionFind()
    keep = (dataset.overlaps[:, 0] > threshold) & (dataset.overlaps[:, 1] > threshold)
    for a, b in dataset.pairs[keep]:
        groups.union(int(a), int(b))
    return groups.labels(len(dataset.video_ids))


def cc_web_groups(dataset: CCWebVideo, positive_labels: Collection[str] = POSITIVE_LABELS):
    """Query set i labels its positives i (a video in several sets keeps the first); others -1."""
    out = np.full(len(dataset.video_ids), -1, np.int64)
    for i in range(len(dataset.queries)):
        for row in dataset.labelled(i, positive_labels):
            if out[row] < 0:
                out[row] = i
    return out


def annotation_groups(
    annotation: Annotation,
    query_ids: Iterable[str],
    video_ids: Sequence[str],
    positive_labels: Collection[str],
    max_relevant: int = 2,
) -> np.ndarray:
    """Groups of an annotation: each query joins its positive videos (connected components).

    Queries with more than `max_relevant` positives (e.g. compilations of many sources, which
    would chain unrelated sources into one group) and queries without any are left out (-2);
    other videos in no group get -1. Only `query_ids` are used (e.g. a training fold); the other
    annotated queries among `video_ids` are left out too.
    """
    row = {v: i for i, v in enumerate(video_ids)}
    groups = _UnionFind()
    left_out = {row[q] for q in annotation if q in row}
    for q in query_ids:
        relevant = sorted(
            {row[v] for label in positive_labels for v in annotation[q].get(label, ()) if v in row}
            - {row[q]}
        )
        if 1 <= len(relevant) <= max_relevant:
            left_out.discard(row[q])
            for r in relevant:
                groups.union(row[q], r)
    labels = groups.labels(len(video_ids))
    labels[sorted(left_out)] = LEFT_OUT
    return labels


def unlabelled_query_sets(
    annotation: Annotation,
    row: Mapping[str, int],
    database_ids: Sequence[str],
    positive_labels: Collection[str],
) -> list[rules.QuerySet]:
    """Query sets whose negatives are the database videos the query's annotation does not name."""
    sets = []
    for query, labels in annotation.items():
        named = {v for ids in labels.values() for v in ids}
        positives = dict.fromkeys(
            [query, *(v for lb in positive_labels for v in labels.get(lb, ()))]
        )
        missing = [v for v in positives if v not in row]
        if missing:
            raise DatasetError(
                f"query {query!r}: annotated ids without features: {preview_ids(missing)}"
            )
        negatives = [row[v] for v in database_ids if v not in named and v != query]
        sets.append(([row[v] for v in positives], negatives))
    return sets


# ---------------------------------------------------------------------------------------------
# The binary.


@dataclasses.dataclass(frozen=True)
class Generated:
    """What `generate` wrote."""

    name: str
    features: Path
    triplets: Path
    ids: Path
    groups: Path
    num_triplets: int


def _vcdb(path: str, files: Mapping[str, str], fps: float) -> VCDB:
    if os.path.isdir(path) or path.endswith((".txt", ".csv")):
        segments = read_vcdb_annotations(path)
        annotated = {s.video_a for s in segments} | {s.video_b for s in segments}
        missing = sorted(annotated - files.keys())
        if missing:
            raise FeatureError(
                f"{len(missing)} annotated VCDB videos have no features: {preview_ids(missing)}"
            )
        durations = {v: np.load(files[v], mmap_mode="r").shape[0] / fps for v in annotated}
        return vcdb_from_annotations(segments, durations, [v for v in files if v not in annotated])
    return load_vcdb_pickle(path)


def _rows_groups_and_rule(
    dataset: str, files: Mapping[str, str], options: dict
) -> tuple[list[str], np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """The dataset's video ids (feature rows), group labels and triplet rule on the features."""
    if dataset == "vcdb":
        path = options["dataset_path"] or DEFAULT_PATHS["vcdb"]
        if not os.path.exists(path):
            raise DatasetError(f"dataset file {path} does not exist")
        vcdb = _vcdb(path, files, options["fps"])
        threshold = options["threshold"]
        rule = lambda features: rules.vcdb_triplets(features, vcdb, threshold=threshold)
        return vcdb.video_ids, vcdb_groups(vcdb, threshold), rule
    split = options["split"]
    bench, source = load_benchmark(
        dataset, options["dataset_path"], queries=options["queries"],
        database=options["database"], split=split, available=list(files),
    )  # fmt: skip
    ids = bench.video_ids
    positive, negative = options["positive_labels"], options["negative_labels"]
    if isinstance(source, CCWebVideo):
        groups, sets = cc_web_groups(source), rules.cc_web_query_sets(source)
    elif isinstance(source, GenericDataset):
        rows = source.split_indices(split)
        groups = np.full(len(ids), LEFT_OUT, np.int64)
        groups[rows] = source.groups[rows]
        sets = rules.group_query_sets(source.groups, rows)
    else:
        row = {v: i for i, v in enumerate(ids)}
        groups = annotation_groups(
            bench.annotation, bench.query_ids, ids, positive, options["max_relevant"]
        )
        sets = (
            rules.annotation_query_sets(bench.annotation, row, positive, negative)
            if negative
            else unlabelled_query_sets(bench.annotation, row, bench.database_ids, positive)
        )
    distance = options["min_positive_distance"]
    rule = lambda features: rules.query_set_triplets(features, sets, min_positive_distance=distance)
    return ids, groups, rule


def generate(
    dataset: str,
    feature_files: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    dataset_path: str | None = None,
    name: str | None = None,
    queries: str | None = None,
    database: str | None = None,
    split: str | None = None,
    positive_labels: Sequence[str] = ("ND", "DS"),
    negative_labels: Sequence[str] = (),
    threshold: float = 0.8,
    min_positive_distance: float = 0.1,
    max_relevant: int = 2,
    missing: str = "error",
    fps: float = 1.0,
) -> Generated:
    """Reads the dataset and the feature list, generates the triplets and writes the outputs
    (flags of the same names; see the module docstring)."""
    if dataset not in DATASETS:
        raise ValueError(f"--dataset must be one of {DATASETS}, got {dataset!r}")
    files = read_feature_list(feature_files)
    options = dict(
        dataset_path=dataset_path, queries=queries, database=database, split=split,
        positive_labels=tuple(positive_labels), negative_labels=tuple(negative_labels),
        threshold=threshold, min_positive_distance=min_positive_distance,
        max_relevant=max_relevant, fps=fps,
    )  # fmt: skip
    ids, groups, rule = _rows_groups_and_rule(dataset, files, options)
    features = rules.dataset_global_features(ids, files, missing=missing)
    triplets = rule(features)
    name = name or dataset
    out = Path(output_dir)
    features_path, triplets_path = rules.save_triplet_outputs(out, name, features, triplets)
    ids_path, groups_path = out / f"{name}_ids.txt", out / f"{name}_groups.npy"
    with atomic_write(ids_path) as f:
        f.writelines(f"{v}\n" for v in ids)
    save_npy_atomic(groups_path, groups)
    if len(triplets) == 0:
        logging.warning("no triplets: every positive is already closer than every negative")
    return Generated(name, features_path, triplets_path, ids_path, groups_path, len(triplets))


def read_row_ids(path: str | os.PathLike) -> list[str]:
    """The ids of `<name>_ids.txt` (one a line; an empty line is a placeholder row)."""
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def _define_flags() -> None:
    flags.DEFINE_enum("dataset", None, DATASETS, "Which dataset the feature list covers.")
    flags.DEFINE_string("feature_files", None, "File of `<video_id>\\t<path.npy>` lines.")
    flags.DEFINE_string("output_dir", None, "Where the .npy outputs go.")
    flags.DEFINE_string(
        "dataset_path", None, "Pickle, raw folder, annotation.json or dataset.json."
    )
    flags.DEFINE_string("name", None, "Output prefix (default: the dataset name).")
    flags.DEFINE_string("queries", None, "annotation: id list of the queries.")
    flags.DEFINE_string("database", None, "annotation: id list of the database videos.")
    flags.DEFINE_string("split", None, "generic: the split to generate from (default: all).")
    flags.DEFINE_list("positive_labels", ["ND", "DS"], "annotation: positive labels.")
    flags.DEFINE_list("negative_labels", [], "annotation: negative labels (default: unlabelled).")
    flags.DEFINE_float("threshold", 0.8, "vcdb: minimum overlap of a positive pair in both videos.")
    flags.DEFINE_float("min_positive_distance", 0.1, "Skip positive pairs closer than this.")
    flags.DEFINE_integer("max_relevant", 2, "annotation groups: leave out queries with more.")
    flags.DEFINE_enum("missing", "error", ["error", "zeros"], "Videos without features.")
    flags.DEFINE_float("fps", 1.0, "vcdb raw annotations: frames per second of the features.")
    flags.mark_flags_as_required(["dataset", "feature_files", "output_dir"])


def main(argv: Sequence[str]) -> None:
    del argv
    f = flags.FLAGS
    try:
        out = generate(
            f.dataset,
            f.feature_files,
            f.output_dir,
            dataset_path=f.dataset_path,
            name=f.name,
            queries=f.queries,
            database=f.database,
            split=f.split,
            positive_labels=f.positive_labels,
            negative_labels=f.negative_labels,
            threshold=f.threshold,
            min_positive_distance=f.min_positive_distance,
            max_relevant=f.max_relevant,
            missing=f.missing,
            fps=f.fps,
        )
    except (DatasetError, FeatureError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    written = ", ".join(map(str, (out.features, out.triplets, out.ids, out.groups)))
    print(f"{out.num_triplets} triplets; wrote {written}")


if __name__ == "__main__":
    _define_flags()
    app.run(main)
