"""AuSiL similarities between lists of videos, and their DAVR evaluation.

Two scorers share one batched path:
  * trained: the full AuSiL (`ausil_model.npz` of a training workdir, or the pretrained default
    shipped with the package): whitening, attention, comparator CNN, Chamfer;
  * untrained: no learned part at all: L2 → the fitted PCA whitening → L2 per segment, and an
    aggregate of the raw segment-similarity matrix (`ndvr_jax.ausil.aggregate`: Chamfer by
    default; no attention, no comparator), optionally z-normalised per query over the database.

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
import numpy as np
from flax import nnx
from jax.sharding import Mesh

from ndvr_jax import sharding
from ndvr_jax.ausil.aggregate import aggregate, znorm
from ndvr_jax.ausil.model import (
    AuSiL,
    PCAWhitening,
    bucket_length,
    fit_pca_whitening,
    masked_chamfer,
    pack_videos,
    repeat_to_min_length,
)
from ndvr_jax.ausil.saved import (
    default_model_mode,
    default_model_scoring,
    init_ausil,
    load_default_model,
    load_model,
    load_pca,
    model_mode,
    whitening_of,
)
from ndvr_jax.evaluation import retrieval

EMBED_CHUNK = 16  # videos per compiled embedding call


def _l2(x: jax.Array) -> jax.Array:
    return x * jax.lax.rsqrt(jnp.maximum(jnp.sum(x * x, axis=-1, keepdims=True), 1e-15))


def untrained_model(pca: PCAWhitening) -> AuSiL:
    """An AuSiL holding the fitted whitening; scored with `trained=False` only its PCA is used."""
    model = init_ausil(*pca.weights.shape, jax.random.key(0))
    model.set_whitening(pca)
    return model


class Scorer:
    """Embeds videos and scores (query, database) pairs with a trained or untrained AuSiL.
    Untrained, pairs are scored by `aggregate_name` (`top_fraction` for "top"); `normalise`
    z-scores each query's row of `matrix` over the database."""

    def __init__(
        self,
        model: AuSiL,
        trained: bool,
        mesh: Mesh,
        batch_size: int,
        aggregate_name: str = "chamfer",
        top_fraction: float = 0.5,
        normalise: bool = False,
    ):
        sharding.check_batch_size(batch_size, mesh)
        if trained and aggregate_name != "chamfer":
            raise ValueError("the trained AuSiL scores by its comparator + Chamfer only")
        self.batch_size, self.mesh, self.normalise = batch_size, mesh, normalise
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
            sim = jnp.einsum("bnk,bmk->bnm", q, p)
            if aggregate_name == "chamfer":
                return masked_chamfer(sim, ql, pl)
            return aggregate(sim, ql, pl, aggregate_name, top_fraction)

        replicated, split = sharding.replicated(mesh), sharding.batch_sharded(mesh)
        self._embed = jax.jit(embed)
        self._score = jax.jit(
            score,
            in_shardings=(replicated,) * 5 + (split, split),
            out_shardings=split,
        )

    def set_model(self, model: AuSiL) -> None:
        """Scores with `model`'s variables from now on (same shapes; nothing is recompiled)."""
        self._state = sharding.replicate(nnx.state(model), self.mesh)

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
        return znorm(result) if self.normalise else result

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
    workdir: str | os.PathLike,
    untrained: bool = False,
    batch_size: int = 16,
    num_devices: int = 0,
    refit_on: Sequence[np.ndarray] | None = None,
    scoring: Mapping[str, Any] | None = None,
) -> tuple[Scorer, str]:
    """The scorer of a workdir and its name: its trained model if it has one (unless
    `untrained`: its PCA + Chamfer); `workdir` "" is the pretrained model shipped with the package
    (`ndvr_jax.ausil.saved.DEFAULT_MODEL`), scored the way its validation split chose
    (`default_model_mode`; pass the `.npz` path itself to score with its comparator anyway); a
    workdir scores the way its own validation chose (`model_mode`).
    `refit_on`: segment features (e.g. the user's own database) to refit the PCA whitening on,
    same size, before scoring. `batch_size` pairs a compiled step, over `num_devices` devices
    (0: all). `scoring`: the untrained path's `Scorer` options (`aggregate_name`, `top_fraction`,
    `normalise`); None: the shipped default's (`default_model_scoring`) for `workdir` "", else
    plain Chamfer."""
    model = load_default_model() if not workdir else load_model(workdir)
    pca = whitening_of(model) if model is not None else load_pca(workdir)
    explicit = Path(workdir).suffix == ".npz"  # a model file: its comparator
    mode = "trained" if explicit else model_mode(workdir) if workdir else default_model_mode()
    trained = model is not None and not untrained and mode == "trained"
    if refit_on is not None:
        pca = refit_whitening(pca, refit_on)
    if trained:
        model.set_whitening(pca)
    else:
        model = untrained_model(pca)
    name = ("trained" if trained else "untrained") + ("" if workdir else " (shipped default)")
    name += ", PCA refitted" if refit_on is not None else ""
    if scoring is None:
        scoring = default_model_scoring() if not workdir and not trained else {}
    mesh = sharding.make_mesh(num_devices)
    return Scorer(model, trained, mesh, batch_size, **scoring), name


def refit_whitening(pca: PCAWhitening, features: Sequence[np.ndarray]) -> PCAWhitening:
    """A whitening of `pca`'s size fitted on the segments of `features` (the model's comparator
    takes that many dimensions)."""
    segments = np.concatenate([f for f in features if len(f)])
    dims = pca.weights.shape[1]
    if len(segments) <= dims:
        raise ValueError(
            f"refitting the {dims}-d PCA needs more than {dims} segments, got {len(segments)}"
        )
    return fit_pca_whitening(segments, dims)


def evaluate_davr(
    matrix: np.ndarray,
    query_ids: Sequence[str],
    db_ids: Sequence[str],
    annotation: Mapping[str, Any],
) -> dict[str, Any]:
    """FIVR-style DAVR evaluation; pairs without a score (NaN) count as never retrieved."""
    annotated = [i for i, q in enumerate(query_ids) if q in annotation]
    return retrieval.evaluate(
        (matrix[annotated], [query_ids[i] for i in annotated], list(db_ids)), annotation, "DAVR"
    )
