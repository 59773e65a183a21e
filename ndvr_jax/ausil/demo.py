"""AuSiL's part of the main job: the demo benchmark's audio features, PCA, training, DAVR."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from ndvr_jax import search
from ndvr_jax.ausil.scoring import evaluate_davr, make_scorer, similarity_matrix
from ndvr_jax.ausil.training import heldout_queries, load_store_features, resolve_path, train_ausil
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.evaluation import plots, retrieval
from ndvr_jax.features.audio import extract_audio
from ndvr_jax.features.landmarks import landmark_counts
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.landmarks.matching import fused_similarity


def ausil_demo_run(
    config: ml_collections.ConfigDict, data_dir: str | os.PathLike, workdir: str | os.PathLike
) -> dict[str, dict[str, Any]]:
    """Builds the demo benchmark, extracts audio features, fits PCA, trains, scores, evaluates.

    Returns `{"untrained": ..., "trained": ..., "shipped": ...}` DAVR results
    (`retrieval.evaluate` dicts, plus `heldout_mAP`: the mAP over the queries kept out of
    training; "shipped" is the package's pretrained default, never trained on the demo), and with
    `config.landmarks` "shipped + landmarks" (its similarity plus the landmark score). Writes
    under `workdir`: `features/`, `landmarks/`, `pca.npz`, checkpoints, `ausil_model.npz`,
    `similarities_{name}.json`, `davr_{name}.json`, `pr_davr.png`.
    """
    config = ml_collections.ConfigDict(config.to_dict())
    config.data_dir = str(Path(data_dir).resolve())
    work = str(Path(workdir).resolve())
    data = Path(
        build_demo_benchmark(config.data_dir, seed=config.data_seed, size=config.size)
    ).parent
    features_dir = resolve_path(config, config.features_dir, work)
    summary = extract_audio(config.extract, str(data / "videos.txt"), features_dir)
    print(f"audio features: {summary}", flush=True)
    train_ausil(config, work)

    store = FeatureStore(features_dir, "ausil")
    query_ids = [v for v, _ in read_id_path_list(data / "queries.txt")]
    db_ids = [v for v, _ in read_id_path_list(data / "database.txt")]
    queries, database = load_store_features(store, query_ids), load_store_features(store, db_ids)
    annotation = load_annotation(data / "annotation.json")
    heldout = heldout_queries(sorted(annotation), config.holdout_every)
    # The PCA + Chamfer fitted on the demo, AuSiL trained on it, and the model shipped with the
    # package (trained on the real-media corpus, scored the way its validation chose).
    matrices = {}
    for name, source, untrained in (("untrained", work, True), ("trained", work, False),
                                    ("shipped", "", False)):  # fmt: skip
        scorer, _ = make_scorer(source, untrained, **config.similarity)
        matrices[name] = similarity_matrix(scorer, queries, database, query_ids, db_ids)
    if config.get("landmarks"):
        videos, folder = str(data / "videos.txt"), str(Path(work) / "landmarks")
        counts = landmark_counts(config.extract, videos, folder, query_ids, db_ids)
        matrices["shipped + landmarks"] = fused_similarity(matrices["shipped"], counts)
    results = {}
    for name, matrix in matrices.items():
        stem = name.replace(" + ", "_")
        search.save_similarities(
            Path(work) / f"similarities_{stem}.json",
            search.to_similarity_dict(matrix, query_ids, db_ids),
        )
        result = evaluate_davr(matrix, query_ids, db_ids, annotation)
        aps = [result["AP"][q] for q in heldout if q in result["AP"]]
        result["heldout_mAP"] = float(np.mean(aps)) if aps else None
        save_json_atomic(Path(work) / f"davr_{stem}.json", result)
        results[name] = result
        logging.info("AuSiL %s: DAVR mAP %.4f", name, result["mAP"])
    plots.plot_pr_curves(
        {f"AuSiL {name}": r for name, r in results.items()},
        Path(work) / "pr_davr.png",
        title="Demo benchmark, DAVR (audio duplicates)",
    )
    print(
        retrieval.format_table(results, columns=("mAP", "uAP", "heldout_mAP")),
        flush=True,
    )
    return results
