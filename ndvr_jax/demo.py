"""The main job on the demo benchmark: build it, extract frame features, retrieve, evaluate.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run

Compares, on the FIVR-style protocols of the benchmark (DSVR, CSVR, ISVR; DAVR for audio copies):
  * `global`     cosine similarity of global video vectors (ndvr-dml's baseline);
  * `chamfer`    frame-to-frame cosine similarity, max over database frames, mean over query frames;
  * `DML early`, `DML late`  the ndvr-dml network trained on the benchmark, cross-validated over
                 its queries (`ndvr_jax.dml_train.dml_demo_run`), `config.run_dml`;
  * `AuSiL untrained`, `AuSiL trained`  audio retrieval (`ndvr_jax.ausil_pipeline.ausil_demo_run`),
                 DAVR only, `config.run_audio`.
Writes `results.md`, `results.json`, `pr_curves.png` (first protocol), `pr_davr.png`,
`similarities_<system>.json` and a similarity heatmap; DML and AuSiL runs under `dml/`, `audio/`.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax import evaluation, plots, search
from ndvr_jax.ausil_pipeline import ausil_demo_run
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.dml_train import dml_demo_run
from ndvr_jax.extraction import extract_visual
from ndvr_jax.io.atomic import atomic_write, save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list

_CONFIG = config_flags.DEFINE_config_file("config", "configs/demo.py", "Demo config.")
_WORKDIR = flags.DEFINE_string("workdir", "demo_run", "Where features and results go.")


def load_frame_features(store: FeatureStore, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded `[V, T_max, D]` frame features and frame counts of `ids`."""
    arrays = [store.load(v) for v in ids]
    counts = np.array([len(a) for a in arrays])
    padded = np.zeros((len(ids), counts.max(), arrays[0].shape[1]), np.float32)
    for i, a in enumerate(arrays):
        padded[i, : len(a)] = a
    return padded, counts


@jax.jit
def chamfer_similarity(queries, query_counts, database, database_counts):
    """Mean over query frames of the max cosine similarity over database frames, `[Q, N]`."""
    q = search.l2_normalize(queries)
    d = search.l2_normalize(database)
    sim = jnp.einsum("qtd,nsd->qnts", q, d)
    db_valid = jnp.arange(d.shape[1])[None, None, None, :] < database_counts[None, :, None, None]
    best = jnp.max(jnp.where(db_valid, sim, -jnp.inf), axis=-1)
    q_valid = jnp.arange(q.shape[1])[None, None, :] < query_counts[:, None, None]
    return jnp.sum(jnp.where(q_valid, best, 0.0), axis=-1) / query_counts[:, None]


def retrieve(store: FeatureStore, query_ids: list[str], db_ids: list[str]) -> dict[str, np.ndarray]:
    """Similarity matrices `[Q, N]` of the baseline systems."""
    q_frames, q_counts = load_frame_features(store, query_ids)
    d_frames, d_counts = load_frame_features(store, db_ids)
    q_global = search.global_vector(jnp.asarray(q_frames), jnp.asarray(q_counts))
    d_global = search.global_vector(jnp.asarray(d_frames), jnp.asarray(d_counts))
    return {
        "global": np.asarray(search.cosine_similarity(q_global, d_global)),
        "chamfer": np.asarray(chamfer_similarity(q_frames, q_counts, d_frames, d_counts)),
    }


def _plot_pr(results: dict[str, dict], protocol: str, path: Path) -> None:
    curves = {name: r[protocol] for name, r in results.items() if protocol in r}
    plots.plot_pr_curves(curves, path, title=f"Demo benchmark, {protocol}")


def _report(results: dict[str, dict], protocols: list[str], notes: list[str], header: str) -> str:
    table = evaluation.format_table(results, columns=tuple(f"{p}/mAP" for p in protocols))
    return "\n\n".join([header, table, *notes]) + "\n"


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
            p: evaluation.evaluate((sim, query_ids, db_ids), annotation, p)
            for p in config.protocols
        }
        for name, sim in systems.items()
    }
    for name, sim in systems.items():
        search.save_similarities(
            work / f"similarities_{name}.json", search.to_similarity_dict(sim, query_ids, db_ids)
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


def main(argv: list[str]) -> None:
    del argv
    if not flags.FLAGS["verbosity"].present:  # progress and results print; library logs stay quiet
        logging.set_verbosity(logging.WARNING)
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
