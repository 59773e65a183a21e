"""Per-transformation retrieval results on the independent test set (`ndvr_jax.data.corpus`).

Extracts visual and audio features of every video (`ndvr_jax.features`), scores the queries
against the database with the toolkit's systems and averages the per-query AP by the query's
transformation class (`queries.json`; rows are `<modality>: <class>`):
  * visual systems (`global`, `chamfer`, `DML shipped` when the package ships its DML,
    `DML early/late` with `dml_model_dir`, and with
    `regional` the region Chamfer of features with detected picture-in-picture insets and the
    shipped region whitening, `regional (insets)`) on DSVR (ND + DS: visual copies and
    compilations; audio-only copies have nothing to find there);
  * audio systems (`AuSiL untrained`: PCA whitening fitted on the test set's database segments,
    no labels, + Chamfer; `AuSiL shipped` when the package ships its pretrained weights;
    `AuSiL trained` with `ausil_model_dir`; with `landmarks` the audio landmarks alone and
    added to each AuSiL, `... + landmarks`) on DAVR (audio copies, compilations and the visual
    copies whose sound was kept).
With `run_collection`, the collection search too (`ndvr_jax.collection.demo`): every video
indexed with `index`'s settings (the features above are reused), all pairs queried with the
shipped calibration (fitted on the dev set, nothing fitted here), its stages' mAPs, the mAP against
the re-ranked share, the calibration's quality on these pairs, and `collection/report.html`.
Writes `<workdir>/results.md` and `results.json`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np

from ndvr_jax.ausil.saved import DEFAULT_MODEL, fit_or_load_pca
from ndvr_jax.ausil.scoring import make_scorer
from ndvr_jax.ausil.scoring import similarity_matrix as ausil_similarity_matrix
from ndvr_jax.ausil.training import load_store_features
from ndvr_jax.collection.demo import collection_benchmark_run, collection_markdown
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.evaluation import retrieval
from ndvr_jax.features.audio import extract_audio
from ndvr_jax.features.landmarks import landmark_counts
from ndvr_jax.features.visual import extract_visual
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.jobs.demo import retrieve
from ndvr_jax.jobs.similarity import system_similarities
from ndvr_jax.landmarks.matching import FUSION_HALF_COUNT, fused_similarity, landmark_score
from ndvr_jax.regional.features import load_region_features
from ndvr_jax.regional.similarity import REGION_MARGIN, regional_similarities

Matrix = tuple[np.ndarray, list[str], list[str]]


def by_class(
    result: Mapping[str, Any], classes: Mapping[str, str]
) -> dict[str, dict[str, float | int]]:
    """`{class: {"mAP", "queries"}}` from an evaluation's per-query AP (`retrieval.evaluate`),
    plus `all` (the evaluation's own mAP)."""
    groups: dict[str, list[float]] = {}
    for query, ap in result["AP"].items():
        groups.setdefault(classes[query], []).append(ap)
    out = {
        c: {"mAP": float(np.mean(aps)), "queries": len(aps)} for c, aps in sorted(groups.items())
    }
    out["all"] = {"mAP": float(result["mAP"]), "queries": int(result["num_queries"])}
    return out


def markdown(tables: Mapping[str, Mapping[str, Mapping[str, Mapping[str, Any]]]]) -> str:
    """One table per protocol: a row per transformation class, a column per system."""
    parts = []
    for protocol, systems in tables.items():
        names = list(systems)
        rows = sorted({c for s in systems.values() for c in s} - {"all"}) + ["all"]
        lines = [f"### {protocol}", "", "| class | n | " + " | ".join(names) + " |"]
        lines.append("|" + "---|" * (len(names) + 2))
        for c in rows:
            n = next((s[c]["queries"] for s in systems.values() if c in s), 0)
            cells = [f"{s[c]['mAP']:.4f}" if c in s else "-" for s in systems.values()]
            lines.append(f"| {c} | {n} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def _ids(data: Path, name: str, available: set[str]) -> list[str]:
    return [v for v, _ in read_id_path_list(data / name) if v in available]


def _visual(config, data: Path, work: Path) -> dict[str, Matrix]:
    summary = extract_visual(config.extract, str(data / "videos.txt"), str(work / "features"))
    print(f"visual features: {summary}", flush=True)
    store = FeatureStore(work / "features", config.extract.layout)
    available = set(summary.done) | set(summary.skipped)
    q_ids, db_ids = _ids(data, "queries.txt", available), _ids(data, "database.txt", available)
    systems = {name: (m, q_ids, db_ids) for name, m in retrieve(store, q_ids, db_ids).items()}
    if config.dml_model_dir:
        queries, database = [store.load(v) for v in q_ids], [store.load(v) for v in db_ids]
        for fusion in ("early", "late"):
            dml = ml_collections.ConfigDict(
                dict(system="dml", model_dir=config.dml_model_dir, fusion=fusion, metric="cosine")
            )
            systems[f"DML {fusion}"] = (system_similarities(dml, queries, database), q_ids, db_ids)
    if config.regional:
        systems["regional (insets)"] = _regional(config, data, work)
    return systems


def _regional(config, data: Path, work: Path) -> Matrix:
    """Region Chamfer (`inset`, shipped whitening) of features with detected insets."""
    extract = ml_collections.ConfigDict(config.extract.to_dict())
    extract.insets = True
    summary = extract_visual(extract, str(data / "videos.txt"), str(work / "features_insets"))
    print(f"visual features with insets: {summary}", flush=True)
    available = set(summary.done) | set(summary.skipped)
    q_ids, db_ids = _ids(data, "queries.txt", available), _ids(data, "database.txt", available)
    store = FeatureStore(work / "features_insets", extract.layout)
    load = lambda ids: [load_region_features(store.feature_path(v), v) for v in ids]
    matrix = regional_similarities(load(q_ids), load(db_ids), "inset", "default", REGION_MARGIN)
    return matrix, q_ids, db_ids


def _audio(config, data: Path, work: Path) -> dict[str, Matrix]:
    folder = work / "audio_features"
    summary = extract_audio(config.audio_extract, str(data / "videos.txt"), str(folder))
    print(f"audio features: {summary}", flush=True)
    store = FeatureStore(folder, config.audio_extract.audio.layout)
    every = set(summary.done) | set(summary.skipped) | set(summary.failed)
    queries = load_store_features(store, _ids(data, "queries.txt", every))
    database = load_store_features(store, _ids(data, "database.txt", every))
    q_ids, db_ids = list(queries), list(database)
    pca_dir = work / "audio_pca"  # whitening fitted on the database's segments (no labels)
    fit_or_load_pca(database, config.pca_dims, pca_dir)
    scorers = {"AuSiL untrained": (str(pca_dir), True)}
    if DEFAULT_MODEL.is_file():
        scorers["AuSiL shipped"] = ("", False)
    if config.ausil_model_dir:
        scorers["AuSiL trained"] = (config.ausil_model_dir, False)
    systems = {}
    for name, (model_dir, untrained) in scorers.items():
        scorer, _ = make_scorer(model_dir, untrained, config.batch_size, config.num_devices)
        matrix = ausil_similarity_matrix(scorer, queries, database, q_ids, db_ids)
        systems[name] = (matrix, q_ids, db_ids)
    if config.get("landmarks"):
        videos, folder = str(data / "videos.txt"), str(work / "landmarks")
        counts = landmark_counts(config.audio_extract, videos, folder, q_ids, db_ids)
        systems["landmarks"] = (landmark_score(counts, FUSION_HALF_COUNT), q_ids, db_ids)
        for name in [n for n in systems if n.startswith("AuSiL")]:
            fused = fused_similarity(systems[name][0], counts)
            systems[f"{name} + landmarks"] = (fused, q_ids, db_ids)
    return systems


def run_testset_evaluation(config: ml_collections.ConfigDict, data_dir: str, workdir: str):
    """Extracts, scores and tabulates; returns `{protocol: {system: by_class table}}`."""
    data, work = Path(data_dir), Path(workdir)
    if not (data / "queries.json").is_file():
        raise FileNotFoundError(f"{data} is not a test set (no queries.json)")
    table = json.loads((data / "queries.json").read_text())
    # "visual: noise" and "audio: noise" are different classes
    classes = {q: f"{v['modality']}: {v['class']}" for q, v in table.items()}
    annotation = load_annotation(data / "annotation.json")
    runs: Sequence[tuple[str, dict[str, Matrix]]] = [
        ("DSVR", _visual(config, data, work)),
        ("DAVR", _audio(config, data, work)),
    ]
    tables = {
        protocol: {
            name: by_class(retrieval.evaluate(matrix, annotation, protocol), classes)
            for name, matrix in systems.items()
        }
        for protocol, systems in runs
    }
    report = markdown(tables)
    if config.run_collection:
        collection = collection_benchmark_run(
            config.index, data, work / "collection", work / "features", work / "audio_features",
            fit_calibration=False,
        )  # fmt: skip
        report += "\n### Collection search (shipped calibration)\n\n" + collection_markdown(
            collection
        )
    with atomic_write(work / "results.md") as f:
        f.write(f"Test set {data.resolve()}: mAP per transformation class\n\n{report}")
    save_json_atomic(work / "results.json", tables)
    print(report, flush=True)
    return tables
