"""Similarities of a query list against a database list with one of the toolkit's systems.

Systems (`SYSTEMS`):
  global   cosine (or `distance`: `1 − d / max d`) of ndvr-dml's global video vectors;
  chamfer  frame-level Chamfer similarity of the frame features (`ndvr_jax.chamfer`);
  regional region Chamfer of regional MAC `[T, R, D]` (`--config.regions=3` at extraction;
           `ndvr_jax.regional.similarity`, `region_frames` its frame similarity, `region_pca`
           its whitening: the shipped one, one fitted on the database, or a saved one);
  dml      a trained DML network (`model_dir`: a DML training workdir; without it the network
           shipped with the package, `ndvr_jax/dml/weights`), early or late fusion;
  ausil    AuSiL on audio segment features (`model_dir`: an AuSiL workdir with
           `ausil_model.npz`, or only `pca.npz`, or `untrained`: PCA + Chamfer); without
           `model_dir` the pretrained AuSiL shipped with the package (`ndvr_jax/ausil/weights`);
           `refit_pca` refits its whitening on the database's own segments; with
           `landmarks_dir` (a landmark store) plus `landmark_weight` times the landmark score;
  landmarks the landmark score `count / (count + landmark_half_count)` of audio fingerprints
           (`--config.mode=landmarks` at extraction; `ndvr_jax.landmarks`).
Lists have `<id>\\t<path>` (or `<id> <path>`) lines, the path a feature file (visual: `.npy`
frames; audio: `wlaf.npz`, its folder, or a store root); with `features_dir` features are read from
that store by id and the list paths are ignored (so the video lists themselves can be passed).
The result is the similarity JSON every evaluator reads: `{query_id: {db_id: similarity}}`; a
video stored without audio (no audio stream, silence) has no pairs in it (a warning counts them).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import ml_collections
import numpy as np
from absl import logging

from ndvr_jax import search
from ndvr_jax.ausil.saved import default_model_dims
from ndvr_jax.ausil.scoring import make_scorer
from ndvr_jax.ausil.scoring import similarity_matrix as ausil_similarity_matrix
from ndvr_jax.ausil.training import PCA_FILE, load_pca, read_segment_features
from ndvr_jax.chamfer import chamfer_similarity
from ndvr_jax.data.feature_lists import FeatureError, check_frame_features, load_frame_features
from ndvr_jax.dml.embed import DEFAULT_DML, embed_early, embed_late, load_dml
from ndvr_jax.features.landmarks import load_landmark_file
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.landmarks.matching import (
    FUSION_HALF_COUNT,
    FUSION_WEIGHT,
    aligned_counts,
    fused_similarity,
    landmark_score,
)
from ndvr_jax.regional.features import load_region_features
from ndvr_jax.regional.similarity import REGION_MARGIN, regional_similarities

SYSTEMS = ("global", "chamfer", "dml", "ausil", "regional", "landmarks")
FUSIONS = ("early", "late")


def default_similarity_config() -> ml_collections.ConfigDict:
    """Every setting of `python -m ndvr_jax.similarity` (each also a flag of the same name)."""
    return ml_collections.ConfigDict(
        dict(
            system="global",  # global | chamfer | dml | ausil | regional | landmarks
            queries="",  # `<id>\t<features path>` lines
            database="",  # `<id>\t<features path>` lines
            features_dir="",  # read features by id from this store instead of the list paths
            model_dir="",  # dml: a DML training workdir; ausil: an AuSiL workdir ("": shipped)
            metric="cosine",  # global / dml: cosine | distance
            fusion="early",  # dml: early (global vectors) | late (every frame)
            untrained=False,  # ausil: ignore a trained model (PCA + Chamfer)
            refit_pca=False,  # ausil: refit the PCA whitening on the database's segments
            batch_size=16,  # ausil: pairs a compiled step
            num_devices=0,  # ausil: devices to shard pairs over (0: all)
            landmarks_dir="",  # ausil: also the landmark evidence of this landmark store
            landmark_weight=FUSION_WEIGHT,  # ausil + landmarks: the landmark score's weight
            landmark_half_count=FUSION_HALF_COUNT,  # aligned hits that score 0.5
            output="similarities.json",
            top_k=0,  # keep the best k per query (0: all)
            region_frames="inset",  # regional: inset | visil | symmetric (frame similarity)
            # regional whitening: "default" (shipped), "database" (fitted on the database), ""
            # (none) or an .npz from `python -m ndvr_jax.fit_region_pca`
            region_pca="default",
            region_margin=REGION_MARGIN,  # regional inset: what a region must beat whole frames by
        )
    )


def _visual_loader(
    features_dir: str, load: Callable[..., np.ndarray] = load_frame_features
) -> Callable[[str, str], np.ndarray]:
    store = FeatureStore(features_dir) if features_dir else None
    source = (lambda v, p: store.feature_path(v)) if store else (lambda v, p: p)
    return lambda video_id, path: load(source(video_id, path), video_id)


def _audio_loader(features_dir: str) -> Callable[[str, str], np.ndarray]:
    def load(video_id: str, path: str) -> np.ndarray:
        source = features_dir or path
        try:
            features = read_segment_features(source, video_id)
        except (OSError, KeyError, ValueError) as e:
            raise FeatureError(f"video {video_id!r}: no audio features in {source}: {e}") from e
        # [0, D]: no audio stream or silence; left out of the results
        check_frame_features(features, video_id, source, allow_empty=True)
        return features

    return load


def _landmark_loader(features_dir: str) -> Callable[[str, str], np.ndarray]:
    store = FeatureStore(features_dir) if features_dir else None
    return lambda video_id, path: load_landmark_file(
        store.feature_path(video_id) if store else path, video_id
    )


LOADERS = {"ausil": _audio_loader, "landmarks": _landmark_loader}


def _load_list(path: str, load: Callable[[str, str], np.ndarray]) -> dict[str, np.ndarray]:
    if not path or not Path(path).is_file():
        raise FeatureError(f"video list {path!r} does not exist")
    return {video_id: load(video_id, p) for video_id, p in read_id_path_list(path)}


def _check_widths(features: dict[str, np.ndarray], expected: int, reference: str) -> None:
    """Raises FeatureError naming the first video whose features are not `expected`-d
    (`reference`: what has or takes that width)."""
    for video_id, array in features.items():
        if array.shape[1] != expected:
            raise FeatureError(
                f"video {video_id!r} has {array.shape[1]}-d features, {reference} {expected}-d "
                "(extracted with another backbone or settings?)"
            )


def _check_all_widths(config: ml_collections.ConfigDict, features: dict[str, np.ndarray]) -> None:
    """One width for every video, and the one an AuSiL workdir's whitening takes."""
    first = next(iter(features))
    _check_widths(features, features[first].shape[1], f"video {first!r} has")
    if config.system == "ausil" and (Path(config.model_dir) / PCA_FILE).is_file():
        width = load_pca(config.model_dir).mean.shape[0]
        _check_widths(features, width, f"the AuSiL model of {config.model_dir} takes")
    if config.system == "ausil" and not config.model_dir:
        _check_widths(features, default_model_dims(), "the shipped AuSiL model takes")


def system_similarities(
    config: ml_collections.ConfigDict,
    queries: Sequence[np.ndarray],
    database: Sequence[np.ndarray],
) -> np.ndarray:
    """[Q, N] similarities of `config.system` between `[n_i, D]` features of two lists."""
    system = config.system
    if system == "chamfer":
        return chamfer_similarity(queries, database)
    if system == "regional":
        return regional_similarities(
            queries, database, config.region_frames, config.region_pca, config.region_margin
        )
    if system == "ausil":
        scorer, _ = make_scorer(
            config.model_dir,
            config.untrained,
            config.batch_size,
            config.num_devices,
            refit_on=list(database) if config.refit_pca else None,
        )
        q_ids, d_ids = [str(i) for i in range(len(queries))], [str(i) for i in range(len(database))]
        return ausil_similarity_matrix(
            scorer,
            dict(zip(q_ids, queries, strict=True)),
            dict(zip(d_ids, database, strict=True)),
            q_ids,
            d_ids,
        )
    if system == "landmarks":
        scores = landmark_score(aligned_counts(queries, database), config.landmark_half_count)
        silent = lambda videos: np.array([not len(v) for v in videos], bool)
        scores[silent(queries)], scores[:, silent(database)] = np.nan, np.nan  # no pairs
        return scores
    if system == "global":
        embed = search.global_vectors
    elif system == "dml":
        if config.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {config.fusion!r}")
        model, _ = load_dml(config.model_dir or DEFAULT_DML)
        width = model.layers[0].in_features
        if queries[0].shape[1] != width:
            raise FeatureError(f"the DML network takes {width}-d inputs, features are "
                               f"{queries[0].shape[1]}-d")  # fmt: skip
        if config.fusion == "early":
            embed = lambda videos: embed_early(model, search.global_vectors(videos))
        else:
            embed = lambda videos: embed_late(model, videos)
    else:
        raise ValueError(f"system must be one of {SYSTEMS}, got {system!r}")
    return search.similarity_matrix(embed(list(queries)), embed(list(database)), config.metric)


def run_similarity(config: ml_collections.ConfigDict) -> Path:
    """Loads both lists, computes `config.system`'s similarities, writes the similarity JSON."""
    if config.system not in SYSTEMS:
        raise ValueError(f"system must be one of {SYSTEMS}, got {config.system!r}")
    loader = LOADERS.get(config.system, _visual_loader)
    if config.system == "regional":  # [T, R, D] regional MAC
        loader = lambda features_dir: _visual_loader(features_dir, load_region_features)
    queries = _load_list(config.queries, loader(config.features_dir))
    database = _load_list(config.database, loader(config.features_dir))
    if not queries or not database:
        raise FeatureError("both lists need at least one video")
    _check_all_widths(config, {**queries, **database})
    matrix = system_similarities(config, list(queries.values()), list(database.values()))
    if config.system == "ausil" and config.landmarks_dir:
        load_marks = _landmark_loader(config.landmarks_dir)  # one store for every video
        marks = lambda ids: [load_marks(v, "") for v in ids]
        counts = aligned_counts(marks(queries), marks(database))
        matrix = fused_similarity(
            matrix, counts, config.landmark_weight, config.landmark_half_count
        )
    silent = [v for v, f in {**queries, **database}.items() if not len(f)]
    if silent:
        logging.warning("%d videos have no audio segments, left out: %s", len(silent), silent[:5])
    q_ids, d_ids = list(queries), list(database)
    scores = search.to_similarity_dict(matrix, q_ids, d_ids, top_k=config.top_k)
    output = Path(config.output)
    search.save_similarities(output, scores)
    print(f"{config.system}: {len(q_ids)} x {len(d_ids)} similarities in {os.path.abspath(output)}")
    return output
