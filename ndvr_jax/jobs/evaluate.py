"""The evaluate job: similarities of benchmark systems, scored on its protocols, as a report.

Two ways in:
  * features: the dataset's global vectors (`features`, the triplet generator's
    `<name>_features.npy`, or `feature_files`) give the `baseline`; with `model_dir` (a DML
    training workdir) also `DML early` (the network on the global vectors) and `DML late` (on
    every frame, averaged). Similarity `distance` is the original's `1 − d / max(d)`, `cosine` the
    dot product of unit vectors.
  * `similarities`: any similarity JSONs (`{query: {db: score}}`, e.g. `python -m
    ndvr_jax.similarity`), scored as they are (`name=path` names a system; default the stem).
Protocols (`protocols`, default the dataset's): CC_WEB, CC_WEB* and their `clean` variants,
DSVR, CSVR, ISVR, DAVR, or `labels` for any labels of the annotation (`G` for generic datasets).
Writes `results.json`, `results.md`, `pr_curves.png` and `similarities_<system>.json` into
`output_dir` (`ndvr_jax.evaluation.report.write_report`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from ndvr_jax import search
from ndvr_jax.data.benchmarks import Benchmark, load_benchmark, read_row_ids
from ndvr_jax.data.datasets import DatasetError
from ndvr_jax.data.datasets.generic import preview_ids
from ndvr_jax.data.feature_lists import FeatureError, load_frame_features, read_feature_list
from ndvr_jax.dml.embed import embed_early, embed_late, load_dml
from ndvr_jax.dml.training import check_features, load_npy
from ndvr_jax.dml.triplets import dataset_global_features
from ndvr_jax.evaluation import retrieval
from ndvr_jax.evaluation.report import evaluate_systems, protocol_variants, write_report

FUSIONS = ("early", "late", "both")


def default_eval_config() -> ml_collections.ConfigDict:
    """Every setting of `python -m ndvr_jax.evaluate` (each also a flag of the same name)."""
    return ml_collections.ConfigDict(
        dict(
            dataset="cc_web_video",  # cc_web_video | annotation | generic
            dataset_path="",  # default for cc_web_video: datasets/cc_web_video.pickle
            queries="",  # annotation: id list of the queries
            database="",  # annotation: id list of the database
            split="",  # generic: the split to evaluate
            features="",  # <name>_features.npy of the triplet generator
            ids="",  # row ids of --features (default: <name>_ids.txt beside it)
            feature_files="",  # frame features: global vectors when no --features; late fusion
            similarities="",  # comma-separated similarity JSONs ([name=]path) to score instead
            model_dir="",  # a DML training workdir; empty: the baseline only
            fusion="early",  # early | late | both
            similarity="distance",  # distance (1 - d / max d, the original) | cosine
            protocols="",  # comma-separated; empty: the dataset's
            labels="",  # comma-separated labels of a custom protocol
            output_dir="evaluation",
            top_k=0,  # similarity JSON: the best k per query (0 = all)
        )
    )


def _global_vectors(config: ml_collections.ConfigDict, bench: Benchmark, needed: list[str]):
    """[len(needed), D] global vectors from --features (+ row ids) or from --feature_files."""
    if config.features:
        features = check_features(load_npy(config.features, "features"), config.features)
        beside = re.sub(r"_features\.npy$", "_ids.txt", config.features)
        ids_path = config.ids or (beside if beside != config.features else "")
        if config.ids and not os.path.isfile(config.ids):
            raise DatasetError(f"id list {config.ids} does not exist")
        row_ids = read_row_ids(ids_path) if os.path.isfile(ids_path) else bench.video_ids
        if len(row_ids) != len(features):
            source = ids_path if os.path.isfile(ids_path) else "in the dataset"
            raise DatasetError(
                f"{config.features} has {len(features)} rows but {len(row_ids)} video ids "
                f"({source})"
            )
        row = {v: i for i, v in enumerate(row_ids)}
        missing = [v for v in needed if v not in row]
        if missing:
            raise DatasetError(
                f"{len(missing)} videos are not rows of {config.features}: {preview_ids(missing)}"
            )
        return features[[row[v] for v in needed]]
    if not config.feature_files:
        raise DatasetError("give --features (global vectors) or --feature_files (frame features)")
    return dataset_global_features(needed, read_feature_list(config.feature_files))


def _late_embeddings(
    model, ids: Sequence[str], feature_files: str, chunk: int = 1024
) -> np.ndarray:
    files = read_feature_list(feature_files)
    missing = [v for v in ids if v not in files]
    if missing:
        raise FeatureError(f"{len(missing)} videos have no frame features: {preview_ids(missing)}")
    parts = []
    for start in range(0, len(ids), chunk):
        videos = [
            load_frame_features(files[v], v, model.layers[0].in_features)
            for v in ids[start : start + chunk]
        ]
        parts.append(embed_late(model, videos))
    return np.concatenate(parts)


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _json_systems(config: ml_collections.ConfigDict) -> tuple[Benchmark, dict[str, np.ndarray]]:
    """The benchmark and `{name: [Q, N]}` of the similarity JSONs (NaN = pair not scored)."""
    loaded = {}
    for item in _split(config.similarities):
        name, _, path = item.rpartition("=")
        loaded[name or Path(path).stem] = search.load_similarities(path)
    ranked = list(
        dict.fromkeys(v for sims in loaded.values() for row in sims.values() for v in row)
    )
    bench, _ = load_benchmark(
        config.dataset, config.dataset_path or None, queries=config.queries or None,
        database=config.database or None, split=config.split or None, available=ranked,
    )  # fmt: skip
    systems = {}
    for name, sims in loaded.items():
        rows = {q: sims.get(q, {}) for q in bench.query_ids}
        systems[name] = retrieval.dict_to_matrix(rows, bench.database_ids)[0]
    return bench, systems


def _feature_systems(config: ml_collections.ConfigDict) -> tuple[Benchmark, dict[str, np.ndarray]]:
    """The benchmark and `{name: [Q, N]}` of the baseline and, with a model, DML's fusions."""
    if config.fusion not in FUSIONS:
        raise ValueError(f"fusion must be one of {FUSIONS}, got {config.fusion!r}")
    available = list(read_feature_list(config.feature_files)) if config.feature_files else None
    bench, _ = load_benchmark(
        config.dataset, config.dataset_path or None, queries=config.queries or None,
        database=config.database or None, split=config.split or None, available=available,
    )  # fmt: skip
    needed = list(dict.fromkeys([*bench.query_ids, *bench.database_ids]))
    vectors = _global_vectors(config, bench, needed)
    embedded = {"baseline": vectors}
    if config.model_dir:
        model, _ = load_dml(config.model_dir)
        if model.layers[0].in_features != vectors.shape[1]:
            raise DatasetError(
                f"the model takes {model.layers[0].in_features}-d inputs but the features are "
                f"{vectors.shape[1]}-d"
            )
        if config.fusion in ("early", "both"):
            embedded["DML early"] = embed_early(model, vectors)
        if config.fusion in ("late", "both"):
            if not config.feature_files:
                raise DatasetError("late fusion needs the frame features (--feature_files)")
            embedded["DML late"] = _late_embeddings(model, needed, config.feature_files)
    position = {v: i for i, v in enumerate(needed)}
    q_rows = [position[v] for v in bench.query_ids]
    db_rows = [position[v] for v in bench.database_ids]
    return bench, {
        name: search.similarity_matrix(x[q_rows], x[db_rows], config.similarity)
        for name, x in embedded.items()
    }


def run_evaluation(config: ml_collections.ConfigDict) -> dict[str, dict[str, dict[str, Any]]]:
    """Loads everything `config` names, evaluates every system and writes the report."""
    bench, systems = (_json_systems if config.similarities else _feature_systems)(config)
    variants = protocol_variants(bench, _split(config.protocols), _split(config.labels))
    results = evaluate_systems(
        systems, bench.query_ids, bench.database_ids, bench.annotation, variants
    )
    scoring = "given similarities" if config.similarities else f"{config.similarity} similarity"
    title = (
        f"{bench.name}: {len(bench.query_ids)} queries, {len(bench.database_ids)} database "
        f"videos, {scoring}"
    )
    table = write_report(
        config.output_dir, results, systems, bench.query_ids, bench.database_ids,
        title=title, plot_title=f"{bench.name}, {scoring}", top_k=config.top_k,
    )  # fmt: skip
    print(table)
    print(
        f"results in {os.path.abspath(config.output_dir)}: results.json, results.md, pr_curves.png"
    )
    return results
