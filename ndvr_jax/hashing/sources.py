"""The video sets a hashing run trains and evaluates on, from `config.data`.

Every kind gives three sources (see `ndvr_jax.hashing.data`): `train` (the labelled training
videos), `database` (the videos whose codes are exported and searched) and `queries`, and, where
relevance is annotated rather than "same class", the annotation and its protocol.
  synthetic  `synthetic.synthetic_videos(**data.synthetic)`: train = database = its train split,
             queries = its test split.
  demo       a benchmark folder in the demo layout (`annotation.json`, `queries.txt`,
             `database.txt`) and its frame features (`<features_dir>/<id>.npy`, from the extract
             binary); training classes are copy groups (`copy_group_labels`, leaving out queries
             with more than `data.max_relevant` copies: compilations would merge every group);
             train = every video; relevance = the annotation under `data.protocol` (DSVR).
             With `data.folds` > 1, the queries of fold `data.fold` (every folds-th, from
             `fold`) are held out: their copy groups give no training labels, and only they
             are scored.
  tfds       the toolkit's TFDS builders (`ndvr_jax.data.tfds_builders`: `data.tfds_name`,
             built into `data.tfds_data_dir`): train = `data.train_split`, database =
             `data.database_split` (default: the train split), queries = `data.test_split`;
             relevant = same class, or the annotation `data.annotation_file` under
             `data.protocol` (`ndvr_demo_features/fold0of2`: splits train, database, queries and
             the benchmark's annotation.json).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import ml_collections

from ndvr_jax.data.annotations import Annotation, copy_group_labels, load_annotation
from ndvr_jax.data.grain_source import tfds_source
from ndvr_jax.hashing.data import Example
from ndvr_jax.hashing.synthetic import synthetic_videos
from ndvr_jax.io.store import FeatureStore, read_id_path_list


class VideoSets(NamedTuple):
    """What a hashing run trains on, encodes and scores."""

    train: Sequence[Example]
    database: Sequence[Example]
    queries: Sequence[Example]
    annotation: Annotation | None = None  # None: relevant = same class
    protocol: str = "DSVR"


def _demo_sets(data: ml_collections.ConfigDict) -> VideoSets:
    root = Path(data.demo_dir)
    queries = [v for v, _ in read_id_path_list(root / "queries.txt")]
    database = [v for v, _ in read_id_path_list(root / "database.txt")]
    everything = queries + [v for v in database if v not in set(queries)]
    annotation = load_annotation(root / "annotation.json")
    held_out = queries[data.fold :: data.folds] if data.folds > 1 else queries
    training = {q: a for q, a in annotation.items() if data.folds < 2 or q not in held_out}
    labels = copy_group_labels(training, everything, max_relevant=data.max_relevant)
    store = FeatureStore(data.features_dir)
    examples = {
        v: {"id": v, "features": store.load(v), "label": int(label)}
        for v, label in zip(everything, labels, strict=True)
    }
    return VideoSets(
        list(examples.values()),
        [examples[v] for v in database],
        [examples[v] for v in held_out],
        annotation,
        data.protocol,
    )


def _tfds_sets(data: ml_collections.ConfigDict) -> VideoSets:
    def split(name: str):
        return tfds_source(data.tfds_name, name, data.tfds_data_dir)

    train = split(data.train_split)
    database = split(data.database_split) if data.database_split else train
    if not data.annotation_file:
        return VideoSets(train, database, split(data.test_split))
    annotation = load_annotation(data.annotation_file)
    return VideoSets(train, database, split(data.test_split), annotation, data.protocol)


def load_video_sets(data: ml_collections.ConfigDict) -> VideoSets:
    """The video sets of `config.data`."""
    if data.kind == "synthetic":
        splits = synthetic_videos(**data.synthetic)
        return VideoSets(splits["train"], splits["train"], splits["test"])
    if data.kind == "demo":
        return _demo_sets(data)
    if data.kind == "tfds":
        return _tfds_sets(data)
    raise ValueError(f"unknown data kind {data.kind!r}; use synthetic, demo or tfds")
