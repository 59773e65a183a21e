"""The triplet generator (the original's `triplet_generator.py`): a dataset and a feature list in,
the original's training files out, plus ids and group labels for in-batch mining.

Outputs in `output_dir` (`<name>` = the dataset's name unless given):
  `<name>_features.npy`  [N, D] global vectors, row i = video i of the dataset (the original's)
  `<name>_triplets.npy`  [T, 3] int64 (anchor, positive, negative) rows (the original's)
  `<name>_ids.txt`       the video id of each row
  `<name>_groups.npy`    [N] int64 group label of each row (`ndvr_jax.dml.groups`)
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ndvr_jax.data.benchmarks import DATASETS, DEFAULT_PATHS, load_benchmark
from ndvr_jax.data.datasets import (
    VCDB,
    CCWebVideo,
    DatasetError,
    GenericDataset,
    load_vcdb_pickle,
    read_vcdb_annotations,
    vcdb_from_annotations,
)
from ndvr_jax.data.datasets.generic import preview_ids
from ndvr_jax.data.feature_lists import FeatureError, read_feature_list
from ndvr_jax.dml import triplets as rules
from ndvr_jax.dml.groups import LEFT_OUT, annotation_groups, cc_web_groups, vcdb_groups
from ndvr_jax.io.atomic import atomic_write, save_npy_atomic

log = logging.getLogger(__name__)


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
            else rules.unlabelled_query_sets(bench.annotation, row, bench.database_ids, positive)
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
        log.warning("no triplets: every positive is already closer than every negative")
    return Generated(name, features_path, triplets_path, ids_path, groups_path, len(triplets))
