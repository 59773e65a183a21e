"""The main job on the demo benchmark: build it, extract frame features, retrieve, evaluate.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run

Compares two training-free visual baselines on the FIVR-style protocols of the benchmark:
  * `global`  cosine similarity of global video vectors (ndvr-dml's baseline);
  * `chamfer` frame-to-frame cosine similarity, max over database frames, mean over query frames.
Writes `results.md`, `pr_curves.png`, `similarities_<system>.json` and a similarity heatmap.
"""

from __future__ import annotations

import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax import evaluation, plots, search
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.extraction import extract_visual
from ndvr_jax.io.atomic import atomic_write
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
    first = config.protocols[0]
    plots.plot_pr_curves(
        {f"{name} ({first})": r[first] for name, r in results.items()},
        work / "pr_curves.png",
        title=f"Demo benchmark, {first}",
    )
    plots.plot_similarity_matrix(
        systems["chamfer"],
        work / "similarity_chamfer.png",
        row_labels=query_ids,
        col_labels=db_ids,
        title="Chamfer frame similarity (queries x database)",
    )
    table = evaluation.format_table(results, columns=tuple(f"{p}/mAP" for p in config.protocols))
    with atomic_write(work / "results.md") as f:
        f.write(
            f"Demo benchmark ({len(query_ids)} queries, {len(db_ids)} database videos), "
            f"backbone {config.extract.backbone}\n\n{table}\n"
        )
    print(table)
    print(f"results in {os.path.abspath(work)}: results.md, pr_curves.png, similarities_*.json")
    return results


def main(argv: list[str]) -> None:
    del argv
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
