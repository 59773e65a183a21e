"""AuSiL similarities between lists of videos, DAVR evaluation, and the whole demo in one call.

Two scorers share one batched path:
  * trained: the full AuSiL (`ausil_model.npz` of a training workdir): whitening, attention,
    comparator CNN, Chamfer;
  * untrained: no learned part at all: L2 → the fitted PCA whitening → L2 per segment, and the
    Chamfer similarity of the raw segment-similarity matrix (no attention, no comparator).

Every video is embedded once, padded to a power-of-two bucket of segments (short videos repeated
to 10 first, as AuSiL). Pairs are scored in fixed-size chunks of (query, database) indices per
pair of buckets, so one compiled function serves every chunk of a bucket pair; the chunk's pair
axis is sharded over the devices and the embeddings are replicated.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx
from jax.sharding import Mesh

from ndvr_jax import evaluation, plots, search, sharding
from ndvr_jax.ausil_training import (
    heldout_queries,
    init_ausil,
    load_model,
    load_pca,
    load_store_features,
    resolve_path,
    train_ausil,
)
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.extraction import extract_audio
from ndvr_jax.io.atomic import save_json_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.models.ausil import (
    AuSiL,
    PCAWhitening,
    bucket_length,
    masked_chamfer,
    pack_videos,
    repeat_to_min_length,
)

EMBED_CHUNK = 16  # videos per compiled embedding call


def _l2(x: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-15))


def untrained_model(pca: PCAWhitening) -> AuSiL:
    """An AuSiL holding the fitted whitening; scored with `trained=False` only its PCA is used."""
    model = init_ausil(*pca.weights.shape, jax.random.key(0))
    model.set_whitening(pca)
    return model


class Scorer:
    """Embeds videos and scores (query, database) pairs with a trained or untrained AuSiL."""

    def __init__(self, model: AuSiL, trained: bool, mesh: Mesh, batch_size: int):
        sharding.check_batch_size(batch_size, mesh)
        self.batch_size, self.mesh = batch_size, mesh
        graphdef, state = nnx.split(model)
        self._state = sharding.replicate(state, mesh)

        def embed(state, x):
            m = nnx.merge(graphdef, state)
            if trained:
                return m.embed(x)
            white = jnp.matmul(_l2(x) - m.pca_mean[...], m.pca_weights[...], precision="highest")
            return _l2(white)

        def score(state, q_all, q_len, p_all, p_len, qi, pi):
            q, ql, p, pl = q_all[qi], q_len[qi], p_all[pi], p_len[pi]
            if trained:
                return nnx.merge(graphdef, state).compare(q, ql, p, pl).similarity
            return masked_chamfer(jnp.einsum("bnk,bmk->bnm", q, p), ql, pl)

        replicated, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
        self._embed = jax.jit(embed)
        self._score = jax.jit(
            score,
            in_shardings=(replicated,) * 5 + (split, split),
            out_shardings=split,
        )

    def embed(self, videos: Sequence[np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray, list]]:
        """Bucketed embeddings: `{length: (embeddings [n, length, K], lengths [n], indices)}`."""
        groups: dict[int, list[int]] = {}
        for i, v in enumerate(videos):
            groups.setdefault(bucket_length(len(repeat_to_min_length(v))), []).append(i)
        out = {}
        for length, indices in groups.items():
            packed, lengths = pack_videos([videos[i] for i in indices], length)
            chunks = []
            for start in range(0, len(packed), EMBED_CHUNK):
                chunk = packed[start : start + EMBED_CHUNK]
                pad = np.zeros((EMBED_CHUNK - len(chunk), *chunk.shape[1:]), np.float32)
                embedded = self._embed(self._state, jnp.asarray(np.concatenate([chunk, pad])))
                chunks.append(np.asarray(embedded)[: len(chunk)])
            out[length] = (np.concatenate(chunks), lengths, indices)
        return out

    def matrix(self, queries: Sequence[np.ndarray], database: Sequence[np.ndarray]) -> np.ndarray:
        """`[Q, N]` similarities of every query against every database video (all non-empty)."""
        result = np.full((len(queries), len(database)), np.nan, np.float32)
        q_buckets, db_buckets = self.embed(queries), self.embed(database)
        for q_emb, q_len, q_index in q_buckets.values():
            for p_emb, p_len, p_index in db_buckets.values():
                qi, pi = np.meshgrid(
                    np.arange(len(q_index)), np.arange(len(p_index)), indexing="ij"
                )
                qi, pi = qi.ravel().astype(np.int32), pi.ravel().astype(np.int32)
                scores = self.score_pairs((q_emb, q_len), (p_emb, p_len), qi, pi)
                result[np.asarray(q_index)[qi], np.asarray(p_index)[pi]] = scores
        return result

    def score_pairs(
        self,
        queries: tuple[np.ndarray, np.ndarray],
        database: tuple[np.ndarray, np.ndarray],
        qi: np.ndarray,
        pi: np.ndarray,
    ) -> np.ndarray:
        """Scores of the pairs `(queries[qi[j]], database[pi[j]])`; `queries` and `database` are
        one bucket's (embeddings `[n, length, K]`, lengths `[n]`)."""
        args = [jnp.asarray(a) for a in (*queries, *database)]
        n, b = len(qi), self.batch_size
        padded = -(-n // b) * b
        qi, pi = np.pad(qi, (0, padded - n)), np.pad(pi, (0, padded - n))
        outputs = [
            self._score(self._state, *args, qi[s : s + b], pi[s : s + b])
            for s in range(0, padded, b)
        ]
        return np.concatenate([np.asarray(o) for o in outputs])[:n]


def similarity_matrix(
    scorer: Scorer,
    queries: Mapping[str, np.ndarray],
    database: Mapping[str, np.ndarray],
    query_ids: Sequence[str],
    db_ids: Sequence[str],
) -> np.ndarray:
    """`[len(query_ids), len(db_ids)]` similarities; NaN where a video has no features."""
    q_ok = [q for q in query_ids if q in queries and len(queries[q])]
    d_ok = [d for d in db_ids if d in database and len(database[d])]
    out = np.full((len(query_ids), len(db_ids)), np.nan, np.float32)
    if q_ok and d_ok:
        scores = scorer.matrix([queries[q] for q in q_ok], [database[d] for d in d_ok])
        row, col = {q: i for i, q in enumerate(query_ids)}, {d: i for i, d in enumerate(db_ids)}
        out[np.ix_([row[q] for q in q_ok], [col[d] for d in d_ok])] = scores
    return out


def make_scorer(
    workdir: str | os.PathLike, config: ml_collections.ConfigDict, untrained: bool = False
) -> tuple[Scorer, str]:
    """The scorer of a workdir (trained model if there is one, unless `untrained`) and its name."""
    model = None if untrained else load_model(workdir)
    trained = model is not None
    model = model if trained else untrained_model(load_pca(workdir))
    mesh = sharding.make_mesh(config.similarity.num_devices)
    name = "trained" if trained else "untrained"
    return Scorer(model, trained, mesh, config.similarity.batch_size), name


def evaluate_davr(
    matrix: np.ndarray,
    query_ids: Sequence[str],
    db_ids: Sequence[str],
    annotation: Mapping[str, Any],
) -> dict[str, Any]:
    """FIVR-style DAVR evaluation; pairs without a score (NaN) count as never retrieved."""
    annotated = [i for i, q in enumerate(query_ids) if q in annotation]
    return evaluation.evaluate(
        (matrix[annotated], [query_ids[i] for i in annotated], list(db_ids)), annotation, "DAVR"
    )


def ausil_demo_run(
    config: ml_collections.ConfigDict, data_dir: str | os.PathLike, workdir: str | os.PathLike
) -> dict[str, dict[str, Any]]:
    """Builds the demo benchmark, extracts audio features, fits PCA, trains, scores, evaluates.

    Returns `{"untrained": DAVR result, "trained": DAVR result}` (`evaluation.evaluate` dicts,
    plus `heldout_mAP`: the mAP over the queries kept out of training). Writes under `workdir`:
    `features/`, `pca.npz`, checkpoints, `ausil_model.npz`, `similarities_{name}.json`,
    `davr_{name}.json`, `pr_davr.png`.
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
    results = {}
    for untrained in (True, False):
        scorer, name = make_scorer(work, config, untrained)
        matrix = similarity_matrix(scorer, queries, database, query_ids, db_ids)
        search.save_similarities(
            Path(work) / f"similarities_{name}.json",
            search.to_similarity_dict(matrix, query_ids, db_ids),
        )
        result = evaluate_davr(matrix, query_ids, db_ids, annotation)
        aps = [result["AP"][q] for q in heldout if q in result["AP"]]
        result["heldout_mAP"] = float(np.mean(aps)) if aps else None
        save_json_atomic(Path(work) / f"davr_{name}.json", result)
        results[name] = result
        logging.info("AuSiL %s: DAVR mAP %.4f", name, result["mAP"])
    plots.plot_pr_curves(
        {f"AuSiL {name}": r for name, r in results.items()},
        Path(work) / "pr_davr.png",
        title="Demo benchmark, DAVR (audio duplicates)",
    )
    print(
        evaluation.format_table(results, columns=("mAP", "uAP", "heldout_mAP")),
        flush=True,
    )
    return results
