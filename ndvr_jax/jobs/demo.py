"""The main job on the demo benchmark: build it, extract frame features, retrieve, evaluate.

Compares, on the FIVR-style protocols of the benchmark (DSVR, CSVR, ISVR; DAVR for audio copies):
  * `global`     cosine similarity of global video vectors (ndvr-dml's baseline);
  * `chamfer`    frame-level Chamfer similarity (`ndvr_jax.chamfer`);
  * `DML shipped` the DML network shipped in the package (self-supervised on real media, never
                 on the demo), early fusion;
  * `DML early`, `DML late`  the ndvr-dml network trained on the benchmark, cross-validated over
                 its queries (`ndvr_jax.dml.demo.dml_demo_run`), `config.run_dml`;
  * `AuSiL untrained`, `AuSiL trained`, `AuSiL shipped`  audio retrieval
                 (`ndvr_jax.ausil.demo.ausil_demo_run`), DAVR only, `config.run_audio`;
  * collection search: every demo video indexed, all pairs queried, the calibration fitted on
    half of the queries and the query stages scored on the other half, the duplicates report
    (`ndvr_jax.collection.demo.collection_benchmark_run`), `config.run_collection`;
  * copy localisation: VFRM, TN and DP on features extracted at `localize.fps`, scored against
    the benchmark's `segments.json` (`ndvr_jax.pdvr.demo.localize_demo_run`), `config.run_localize`;
    with the audio run's landmarks, the audio copy localisation too
    (`ndvr_jax.landmarks.localize.audio_localize_run`).
Writes `results.md`, `results.json`, `pr_curves.png` (first protocol), `pr_davr.png`,
`similarities_<system>.json` and a similarity heatmap; DML, AuSiL and localisation runs under
`dml/`, `audio/`, `localize/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import ml_collections
import numpy as np
from absl import logging

from ndvr_jax import search
from ndvr_jax.ausil.demo import ausil_demo_run
from ndvr_jax.chamfer import chamfer_similarity
from ndvr_jax.collection.demo import collection_benchmark_run
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.dml.demo import dml_demo_run
from ndvr_jax.dml.embed import DEFAULT_DML, MODEL_FILE
from ndvr_jax.evaluation import plots, retrieval
from ndvr_jax.features.visual import extract_visual
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.jobs.similarity import system_similarities
from ndvr_jax.landmarks.localize import audio_localize_run
from ndvr_jax.pdvr.demo import localize_demo_run


def retrieve(store: FeatureStore, query_ids: list[str], db_ids: list[str]) -> dict[str, np.ndarray]:
    """Similarity matrices `[Q, N]` of the visual systems that need no training on the
    benchmark: global vectors, frame Chamfer and the DML shipped in the package (early fusion)."""
    queries, database = [store.load(v) for v in query_ids], [store.load(v) for v in db_ids]
    systems = {
        "global": search.similarity_matrix(
            search.global_vectors(queries), search.global_vectors(database)
        ),
        "chamfer": chamfer_similarity(queries, database),
    }
    if (DEFAULT_DML / MODEL_FILE).is_file():
        shipped = ml_collections.ConfigDict(
            dict(system="dml", model_dir="", fusion="early", metric="cosine")
        )
        systems["DML shipped"] = system_similarities(shipped, queries, database)
    return systems


def _plot_pr(results: dict[str, dict], protocol: str, path: Path) -> None:
    curves = {name: r[protocol] for name, r in results.items() if protocol in r}
    plots.plot_pr_curves(curves, path, title=f"Demo benchmark, {protocol}")


def _report(results: dict[str, dict], protocols: list[str], notes: list[str], header: str) -> str:
    table = retrieval.format_table(results, columns=tuple(f"{p}/mAP" for p in protocols))
    return "\n\n".join([header, table, *notes]) + "\n"


def _collection_note(report: dict, folder: Path) -> str:
    """The collection search's lines of the report."""
    maps = ", ".join(f"{name} {value:.4f}" for name, value in report["mAP"].items())
    shares = ", ".join(
        f"{float(share):.0%}: {value:.4f}"
        for share, value in report["fused DSVR mAP by re-ranked share"].items()
    )
    calibration = ", ".join(
        f"{name} accuracy {q['accuracy']:.3f} over {q['pairs']} pairs"
        for name, q in report["calibration_held_out"].items()
    )
    return (
        f"Collection search (index of every demo video, all pairs, calibration fitted on half of "
        f"the queries; held-out half): {maps}. Fused DSVR mAP by re-ranked share: {shares}. "
        f"Calibrated scores on held-out pairs: {calibration}. {report['groups']} duplicate "
        f"groups in {folder / 'report.html'}."
    )


def run(config, workdir: str) -> dict[str, dict]:
    """Runs the whole demo; returns `{system: {protocol: evaluation result}}`."""
    work = Path(workdir)
    data = Path(build_demo_benchmark(config.data_dir, seed=config.seed, size=config.size)).parent
    summary = extract_visual(config.extract, str(data / "videos.txt"), str(work / "features"))
    logging.info("features: %s", summary)
    print(f"features: {summary}", flush=True)
    store = FeatureStore(work / "features", config.extract.layout)
    available = set(summary.done) | set(summary.skipped)
    query_ids = [v for v, _ in read_id_path_list(data / "queries.txt") if v in available]
    db_ids = [v for v, _ in read_id_path_list(data / "database.txt") if v in available]
    annotation = load_annotation(data / "annotation.json")

    systems = retrieve(store, query_ids, db_ids)
    results = {
        name: {
            p: retrieval.evaluate((sim, query_ids, db_ids), annotation, p) for p in config.protocols
        }
        for name, sim in systems.items()
    }
    for name, sim in systems.items():
        search.save_similarities(
            work / f"similarities_{name.replace(' ', '_')}.json",
            search.to_similarity_dict(sim, query_ids, db_ids),
        )
    plots.plot_similarity_matrix(
        systems["chamfer"],
        work / "similarity_chamfer.png",
        row_labels=query_ids,
        col_labels=db_ids,
        title="Chamfer frame similarity (queries x database)",
    )
    notes = []
    if config.run_dml:
        dml = dml_demo_run(config.dml, work / "features", data, work / "dml")
        results.update({name: r for name, r in dml.items() if name != "baseline"})
        notes.append(
            f"DML: {config.dml.demo.folds}-fold cross-validation over the queries (each query is "
            f"ranked by a network that never saw it); details in {work / 'dml'}."
        )
    if config.run_audio:
        ausil_config = ml_collections.ConfigDict(config.ausil.to_dict())
        ausil_config.update(data_dir=str(data), data_seed=config.seed, size=config.size)
        audio = ausil_demo_run(ausil_config, data, work / "audio")
        results.update({f"AuSiL {name}": {"DAVR": r} for name, r in audio.items()})
        heldout = audio["trained"]["heldout_mAP"]
        if heldout is not None:
            notes.append(
                f"AuSiL trained: DAVR mAP {heldout:.4f} on the queries kept out of its training; "
                f"details in {work / 'audio'}."
            )
    if config.run_collection:
        audio_features = work / "audio" / "features" if config.run_audio else None
        collection = collection_benchmark_run(
            config.index, data, work / "collection", work / "features", audio_features
        )
        notes.append(_collection_note(collection, work / "collection"))
    if config.run_localize:
        found = localize_demo_run(config.localize, config.extract, data, work / "localize")
        shown = found["timeline"]
        timeline = f"\n\nTimeline of a compilation: {shown}" if shown else ""
        notes.append(
            f"Copy localisation ({config.localize.fps:g} fps features, VCSL segment scores "
            f"against `segments.json`, visual copies; details in {work / 'localize'}):\n\n"
            f"{found['table']}{timeline}"
        )
    if config.run_localize and config.run_audio and config.ausil.get("landmarks"):
        heard = audio_localize_run(work / "audio" / "landmarks", data, work / "localize_audio")
        notes.append(
            "Audio copy localisation (audio landmarks, VCSL segment scores against the `audio` "
            f"segments of `segments.json`; details in {work / 'localize_audio'}):\n\n"
            f"{heard['table']}"
        )
    first = config.protocols[0]
    _plot_pr(results, first, work / "pr_curves.png")
    if "DAVR" in config.protocols and first != "DAVR":
        _plot_pr(results, "DAVR", work / "pr_davr.png")
    report = _report(
        results,
        list(config.protocols),
        notes,
        f"Demo benchmark ({len(query_ids)} queries, {len(db_ids)} database videos), "
        f"backbone {config.extract.backbone}",
    )
    with atomic_write(work / "results.md") as f:
        f.write(report)
    save_json_atomic(work / "results.json", results)
    print(report)
    print(f"results in {os.path.abspath(work)}: results.md, pr_*.png, similarities_*.json")
    return results
