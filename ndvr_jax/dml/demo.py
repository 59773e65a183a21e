"""DML's part of the main job: the demo benchmark's cross-validated DML experiment.

The demo experiment (`dml_demo_run`) must not train on the queries it evaluates: the queries are
split into `demo.folds` folds; for each fold a network is trained on group labels formed from
the other folds' queries and their annotated near-duplicates (`ndvr_jax.dml.groups.
annotation_groups`; the database videos they do not name are negatives, the held-out queries
are left out), and evaluated on the held-out queries against the whole database. Every query is
thus ranked by a network that never saw it; the per-fold rankings are put together into one
similarity matrix per system (cosine similarity by default, whose per-query ranking does not
depend on a fold's scale). The benchmark is small, so one cross-validation's mAP swings by a few
points with the seed: `demo.repeats` cross-validations with other seeds and splits are averaged
(the mean similarity: an ensemble in which no network ranks a query it trained on).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from ndvr_jax import search
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.benchmarks import Benchmark, annotation_benchmark
from ndvr_jax.dml import training as dml_training
from ndvr_jax.dml import triplets as rules
from ndvr_jax.dml.embed import embed_early, embed_late
from ndvr_jax.dml.groups import annotation_groups
from ndvr_jax.evaluation.report import evaluate_systems, protocol_variants, write_report
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list

__all__ = ["dml_demo_run", "fold_split"]


def fold_split(num_queries: int, folds: int, seed: int) -> np.ndarray:
    """Fold index of each query: a seeded permutation dealt round-robin into `folds` folds."""
    if not 2 <= folds <= num_queries:
        raise ValueError(f"need 2 <= folds <= {num_queries} queries, got {folds}")
    out = np.empty(num_queries, np.int64)
    out[np.random.default_rng(seed).permutation(num_queries)] = np.arange(num_queries) % folds
    return out


def _fold_task(
    config: ml_collections.ConfigDict,
    bench: Benchmark,
    vectors: np.ndarray,
    train_queries: list[str],
) -> dml_training.OfflineTripletTask | dml_training.MiningTask:
    """The training task of one fold: only `train_queries`' annotations are used."""
    demo = config.demo
    if config.mode == "mining":
        groups = annotation_groups(
            bench.annotation,
            train_queries,
            bench.video_ids,
            demo.positive_labels,
            demo.max_relevant,
        )
        return dml_training.MiningTask(vectors, groups, config)
    row = {v: i for i, v in enumerate(bench.video_ids)}
    annotation = {q: bench.annotation[q] for q in train_queries}
    sets = rules.unlabelled_query_sets(annotation, row, bench.database_ids, demo.positive_labels)
    triplets = rules.query_set_triplets(vectors, sets, min_positive_distance=0.0)
    return dml_training.OfflineTripletTask(vectors, triplets, config)


def _cross_validated(
    config: ml_collections.ConfigDict,
    bench: Benchmark,
    vectors: np.ndarray,
    frames: list[np.ndarray],
    work: Path,
    repeat: int,
) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
    """`{"DML early", "DML late"}` [Q, N] similarities of one cross-validation, and its log."""
    n_q, demo = len(bench.query_ids), config.demo
    seed = config.seed + 1000 * repeat
    fold_of = fold_split(n_q, demo.folds, seed)
    early = np.zeros((n_q, len(bench.database_ids)), np.float32)
    late = np.zeros_like(early)
    training = []
    for fold in range(demo.folds):
        train_queries = [q for q, f in zip(bench.query_ids, fold_of, strict=True) if f != fold]
        fold_config = ml_collections.ConfigDict(config.to_dict())
        fold_config.seed = seed + fold
        task = _fold_task(fold_config, bench, vectors, train_queries)
        fold_dir = work / f"repeat{repeat}" / f"fold{fold}"
        model, history = dml_training.train_dml(fold_config, fold_dir, task)
        summary = dml_training.summarise_history(history)
        training.append({"repeat": repeat, "fold": fold, "summary": summary})
        training[-1]["queries"] = [bench.query_ids[i] for i in np.flatnonzero(fold_of == fold)]
        print(f"repeat {repeat} fold {fold}: {summary}", flush=True)
        test = np.flatnonzero(fold_of == fold)
        for out, embedded in (
            (early, embed_early(model, vectors)),
            (late, embed_late(model, frames)),
        ):
            out[test] = search.similarity_matrix(embedded[test], embedded[n_q:], demo.similarity)
    return {"DML early": early, "DML late": late}, training


def dml_demo_run(
    config: ml_collections.ConfigDict,
    features_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    workdir: str | os.PathLike,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Cross-validated DML on the demo benchmark against the raw global-vector baseline.

    `config` is `configs/dml_demo.py`'s (or a config holding it as `dml`); `features_dir` holds
    `<id>.npy` frame features of the benchmark in `data_dir` (`queries.txt`, `database.txt`,
    `annotation.json`). The cross-validation runs `demo.repeats` times with other seeds and fold
    splits; a DML system's similarity is the mean over the repeats (an ensemble in which every
    network that ranks a query never saw it), and each repeat's own mAP is kept as `runs_mAP`.
    Writes the report (`results.md`, `pr_curves.png`, `results.json`, similarity JSONs) and each
    fold's training run under `workdir`; returns `{system: {protocol: evaluation result}}` for
    `baseline`, `DML early` and `DML late`.
    """
    config = config.get("dml", config)
    data, work = Path(data_dir), Path(workdir)
    store = FeatureStore(features_dir)
    has_features = lambda v: store.feature_path(v).is_file()
    queries = [v for v, _ in read_id_path_list(data / "queries.txt") if has_features(v)]
    database = [v for v, _ in read_id_path_list(data / "database.txt") if has_features(v)]
    bench = annotation_benchmark(load_annotation(data / "annotation.json"), queries, database)
    frames = [store.load(v) for v in bench.video_ids]
    vectors = search.global_vectors(frames)
    n_q = len(queries)
    variants = protocol_variants(bench, tuple(config.demo.protocols))
    evaluate = lambda systems: evaluate_systems(
        systems, queries, database, bench.annotation, variants
    )
    runs, training = [], []
    for repeat in range(config.demo.repeats):
        systems, log = _cross_validated(config, bench, vectors, frames, work, repeat)
        runs.append(systems)
        training += log
    systems = {
        "baseline": search.similarity_matrix(vectors[:n_q], vectors[n_q:], config.demo.similarity),
        **{name: np.mean([run[name] for run in runs], axis=0) for name in runs[0]},
    }
    results = evaluate(systems)
    run_results = [evaluate(run) for run in runs]
    for name in runs[0]:
        for v in variants:
            results[name][v.name]["runs_mAP"] = [r[name][v.name]["mAP"] for r in run_results]
    save_json_atomic(work / "training.json", {"folds": training})
    title = (
        f"Demo benchmark ({n_q} queries, {len(database)} database videos), DML trained with "
        f"{config.demo.folds}-fold cross-validation over the queries ({config.mode}"
        f"{', ' + config.mining.strategy if config.mode == 'mining' else ''}), "
        f"mean similarity of {config.demo.repeats} repeat(s)"
    )
    table = write_report(
        work, results, systems, queries, database, title=title,
        plot_title=f"Demo: DML ({config.demo.folds}-fold CV) vs baseline",
    )  # fmt: skip
    print(table)
    print(f"DML results in {os.path.abspath(work)}: results.md, pr_curves.png", flush=True)
    return results
