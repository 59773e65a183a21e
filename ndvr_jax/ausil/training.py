"""Training AuSiL (the original released no training code): triplets of videos' audio segments.

Data: segment features `[S, D]` of each video (an `ausil` feature store, see
`ndvr_jax.features.batching.extract_audio`; D = 640 for `musicnn_vgg`, 2,528 for `kumar2018`; or,
with `data.source = "tfds"`, the examples of a TFDS source such as `ndvr_demo_features/audio`,
`data.tfds_name`/`data.train_split` in `data.tfds_data_dir`) and a FIVR-style annotation.
A triplet is
(query, one of its `DA` videos, a database video that is not `DA` for it). With `video_list`
(the raw files), waveform-level augmentation adds self-supervised triplets: a random span of a
database video's audio after a random chain of the copy distortions of
`ndvr_jax.ausil.augment` (speed/tempo, pitch, mixing with another track, band limit, noise,
lossy re-encoding, volume) is the anchor, the video itself the positive, another database video
the negative. Their features are computed once with the extraction's audio CNN and cached.

Recipe (ViSiL's losses, DESIGN §3): PCA whitening is fitted first on every stored segment and
saved (`<workdir>/pca.npz`, reused on resume); loss = triplet loss on the Chamfer similarities
(margin 0.5) + `reg_weight` × the penalty on comparator outputs outside [-1, 1]. Training runs
through `ndvr_jax.training.loop.train` (checkpoints, resume, NaN guard, metrics). Videos longer than
`max_segments` are cut to a random span each time they are drawn; all are packed to one length
so one step compiles once. From a feature store a step draws `batch_size` random triplets; from a
TFDS source the batches come through grain (`GrainAusilTask`: every triplet once an epoch, in a
new order each epoch, each process reading only its rows' features from the source). The
trained model is written to `<workdir>/ausil_model.npz` (+ `.json`).
"""

from __future__ import annotations

import collections
import dataclasses
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from ndvr_jax.ausil.augment import AudioAugmentConfig, random_augment
from ndvr_jax.ausil.model import (
    MIN_SEGMENTS,
    AuSiL,
    PCAWhitening,
    ausil_triplet_loss,
    bucket_length,
    pack_videos,
    similarity_regularisation,
)
from ndvr_jax.ausil.saved import (  # noqa: F401  (PCA_FILE, load_model, load_pca: re-exported)
    MODEL_FILE,
    PCA_FILE,
    fit_or_load_pca,
    init_ausil,
    load_model,
    load_pca,
    save_model,
)
from ndvr_jax.ausil.selfsup import AudioFeaturizer, run_selfsup
from ndvr_jax.data.annotations import load_annotation
from ndvr_jax.data.grain_source import EpochBatches, example_id, tfds_source
from ndvr_jax.io.atomic import save_npz_atomic
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from ndvr_jax.training import loop

AUGMENTED_FILE = "augmented.npz"
ROLES = ("anchor", "positive", "negative")
Triplet = tuple[str, str, tuple[str, ...]]  # anchor, positive, negatives


# ---------------------------------------------------------------------------------------------
# Segment features on disk


def read_segment_features(path: str | os.PathLike, video_id: str | None = None) -> np.ndarray:
    """Segment features `[S, D]` from a `wlaf.npz` (key `features`), a `.npy`, a folder holding
    `wlaf.npz`, or an `ausil` store root holding `<video_id>/wlaf.npz`."""
    path = Path(path)
    if path.is_dir():
        inner = path / "wlaf.npz"
        path = inner if inner.is_file() or video_id is None else path / video_id / "wlaf.npz"
    if path.suffix == ".npy":
        return np.load(path).astype(np.float32)
    with np.load(path) as data:
        return data["features"].astype(np.float32)


def load_store_features(store: FeatureStore, ids: Sequence[str]) -> dict[str, np.ndarray]:
    """`{id: [S, D]}` of the stored videos among `ids` that have at least one segment."""
    out = {}
    for video_id in ids:
        if store.is_complete(video_id):
            features = store.load(video_id)
            if len(features):
                out[video_id] = features.astype(np.float32)
    return out


class SourceSegments(Mapping):
    """`{id: [S, D]}` of the examples of a random-access source (`{"id", "features"}`, e.g. a
    TFDS data source) among `ids` that have at least one segment, read on each access."""

    def __init__(self, source: Sequence[Mapping[str, Any]], ids: Sequence[str]):
        wanted, self.source, self.rows = set(ids), source, {}
        for row in range(len(source)):
            example = source[row]
            if example_id(example) in wanted and len(example["features"]):
                self.rows[example_id(example)] = row

    def __getitem__(self, video_id: str) -> np.ndarray:
        return np.asarray(self.source[self.rows[video_id]]["features"], np.float32)

    def __iter__(self) -> Iterator[str]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


# ---------------------------------------------------------------------------------------------
# Triplets


def heldout_queries(query_ids: Sequence[str], every: int) -> list[str]:
    """Every `every`-th query of the sorted ids (the last of each group); none if `every` is 0."""
    if every <= 0:
        return []
    return [q for i, q in enumerate(sorted(query_ids)) if i % every == every - 1]


def annotation_triplets(
    annotation: Mapping[str, Mapping[str, Sequence[str]]],
    query_ids: Sequence[str],
    db_ids: Sequence[str],
    available: Mapping[str, Any],
) -> list[Triplet]:
    """(query, DA video, non-DA database videos) for each query and DA video with features."""
    triplets = []
    for query in query_ids:
        if query not in available:
            continue
        positives = set(annotation.get(query, {}).get("DA", ()))
        negatives = tuple(v for v in db_ids if v in available and v not in positives | {query})
        for positive in sorted(positives):
            if positive in available and negatives:
                triplets.append((query, positive, negatives))
    return triplets


def augmented_copies(
    entries: Sequence[tuple[str, str]],
    extract_config: ml_collections.ConfigDict,
    copies: int,
    min_seconds: float,
    seed: int,
    augment: AudioAugmentConfig | None = None,
) -> dict[str, np.ndarray]:
    """`{"<id>~aug<k>": [S, D]}`: features of `copies` distorted random spans of each file's audio.

    A span lasts between `min_seconds` and the whole track; another file's audio is the mixing
    background. Files without usable audio give nothing.
    """
    featurize = AudioFeaturizer(extract_config)
    rate = featurize.sample_rate
    augment = augment or AudioAugmentConfig()
    waves = {v: w for v, p in entries if (w := featurize.decode(v, p)) is not None}
    out = {}
    for i, (video_id, samples) in enumerate(waves.items()):
        others = [w for v, w in waves.items() if v != video_id]
        for k in range(copies):
            rng = np.random.default_rng((seed, i, k))
            total = samples.size / rate
            span = max(1, int(rng.uniform(min(min_seconds, total), total) * rate))
            start = int(rng.integers(samples.size - span + 1))
            distorted, applied = random_augment(
                samples[start : start + span], rate, rng, augment, others
            )
            features = featurize(distorted)
            if features is not None:
                key = f"{video_id}~aug{k}"
                out[key] = features
                logging.info("augmented %s: %s", key, ", ".join(applied) or "span only")
    return out


# ---------------------------------------------------------------------------------------------
# The training task


def _crop(features: np.ndarray, max_segments: int, rng: np.random.Generator) -> np.ndarray:
    if len(features) <= max_segments:
        return features
    start = int(rng.integers(len(features) - max_segments + 1))
    return features[start : start + max_segments]


def _repeated_length(n: int) -> int:
    while n < MIN_SEGMENTS:
        n *= 2
    return n


@dataclasses.dataclass
class AusilTask:
    """`loop.TrainTask` for AuSiL over precomputed segment features."""

    config: ml_collections.ConfigDict
    features: Mapping[str, np.ndarray]
    triplets: Sequence[Triplet]
    pca: PCAWhitening

    def __post_init__(self):
        if not self.triplets:
            raise ValueError("no training triplets (no query with a DA video that has features?)")
        longest = max(min(len(f), self.config.max_segments) for f in self.features.values())
        self.length = bucket_length(_repeated_length(longest))
        self.dims = next(iter(self.features.values())).shape[1]

    def create_model(self, rngs: nnx.Rngs) -> AuSiL:
        model = init_ausil(self.dims, self.pca.weights.shape[1], rngs.params())
        model.set_whitening(self.pca)
        return model

    def draw(self, triplet: Triplet, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One row of a batch: the triplet's anchor, positive and a random negative, each cut
        to a random span and packed (`[length, D]` and its segment count)."""
        anchor, positive, negatives = triplet
        negative = negatives[int(rng.integers(len(negatives)))]
        row = {}
        for role, video_id in zip(ROLES, (anchor, positive, negative), strict=True):
            video = _crop(self.features[video_id], self.config.max_segments, rng)
            packed, lengths = pack_videos([video], self.length)
            row[role], row[f"{role}_len"] = packed[0], lengths[0]
        return row

    def batch(self, step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng((self.config.seed, step))
        chosen = rng.integers(len(self.triplets), size=self.config.batch_size)
        rows = [self.draw(self.triplets[t], rng) for t in chosen]
        return {key: np.stack([row[key] for row in rows]) for key in rows[0]}

    def loss(
        self, model: AuSiL, batch: dict[str, jax.Array], rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del rng
        anchor = model.embed(batch["anchor"])
        outputs = [
            model.compare(
                anchor, batch["anchor_len"], model.embed(batch[role]), batch[f"{role}_len"]
            )
            for role in ("positive", "negative")
        ]
        positive, negative = (o.similarity for o in outputs)
        triplet = ausil_triplet_loss(positive, negative, self.config.margin)
        reg = sum(similarity_regularisation(o.raw, o.rows, o.cols) for o in outputs)
        metrics = {
            "triplet": triplet,
            "regularisation": reg,
            "positive_similarity": jnp.mean(positive),
            "negative_similarity": jnp.mean(negative),
            "triplet_accuracy": jnp.mean((positive > negative).astype(jnp.float32)),
        }
        return triplet + self.config.reg_weight * reg, metrics


@dataclasses.dataclass
class GrainAusilTask(AusilTask):
    """`AusilTask` whose batches come through grain (`ndvr_jax.data.grain_source`): every
    triplet once an epoch, in a new order each epoch, each process drawing only its rows."""

    def __post_init__(self):
        super().__post_init__()
        self.batches = EpochBatches(
            list(self.triplets), self.config.batch_size, self.config.seed, self.draw
        )

    def batch(self, step: int) -> dict[str, np.ndarray]:
        return self.batches.batch(step)

    def process_batch(self, step: int) -> dict[str, np.ndarray]:
        return self.batches.process_batch(step)


# ---------------------------------------------------------------------------------------------
# Entry point


def resolve_path(config: ml_collections.ConfigDict, path: str, workdir: str) -> str:
    """A config path with `{workdir}` and `{data_dir}` filled in ("" stays "")."""
    return path.format(workdir=workdir, data_dir=config.get("data_dir", "")) if path else path


def _from_tfds(config: ml_collections.ConfigDict) -> bool:
    data = config.get("data")
    return data is not None and data.get("source", "store") == "tfds"


def _segment_features(
    config: ml_collections.ConfigDict, workdir: str, annotation: Mapping[str, Any]
) -> tuple[Mapping[str, np.ndarray], list[str], list[str]]:
    """The training videos' segment features (store or TFDS source), the negatives' pool and
    the training queries."""
    path = lambda key: resolve_path(config, config[key], workdir)
    heldout = set(heldout_queries(sorted(annotation), config.holdout_every))
    train_queries = [q for q in sorted(annotation) if q not in heldout]
    if _from_tfds(config):
        data = config.data
        source = tfds_source(data.tfds_name, data.train_split, data.tfds_data_dir)
        ids = [example_id(source[i]) for i in range(len(source))]
        features_of = lambda wanted: SourceSegments(source, wanted)  # noqa: E731
    else:
        store = FeatureStore(path("features_dir"), "ausil")
        ids = sorted(p.name for p in store.root.iterdir() if p.is_dir())
        features_of = lambda wanted: load_store_features(store, wanted)  # noqa: E731
    if config.database_list:
        db_ids = [v for v, _ in read_id_path_list(path("database_list"))]
    else:
        db_ids = sorted(v for v in ids if v not in annotation)
    return features_of([*train_queries, *db_ids]), db_ids, train_queries


def prepare_task(config: ml_collections.ConfigDict, workdir: str) -> AusilTask:
    """Loads features and annotation, fits (or reloads) PCA, builds the (augmented) triplets."""
    path = lambda key: resolve_path(config, config[key], workdir)
    annotation = load_annotation(path("annotation_file"))
    features, db_ids, train_queries = _segment_features(config, workdir, annotation)
    pca = fit_or_load_pca(features, config.pca_dims, workdir)
    triplets = annotation_triplets(annotation, train_queries, db_ids, features)
    logging.info("%d annotation triplets from %d queries", len(triplets), len(train_queries))
    aug = config.augment
    if aug.copies_per_video and config.video_list:
        cache = Path(workdir) / AUGMENTED_FILE
        if cache.is_file():
            with np.load(cache) as data:
                augmented = {k: data[k] for k in data.files}
        else:
            entries = [(v, p) for v, p in read_id_path_list(path("video_list")) if v in features]
            entries = [(v, p) for v, p in entries if v in set(db_ids)]
            augmented = augmented_copies(
                entries, config.extract, aug.copies_per_video, aug.min_seconds, config.seed
            )
            save_npz_atomic(cache, **augmented)
        for key in sorted(augmented):
            source = key.split("~")[0]
            negatives = tuple(v for v in db_ids if v in features and v != source)
            triplets.append((key, source, negatives))
        features = collections.ChainMap(augmented, features)
        logging.info("%d augmented anchors", len(augmented))
    return (GrainAusilTask if _from_tfds(config) else AusilTask)(config, features, triplets, pca)


def train_ausil(
    config: ml_collections.ConfigDict, workdir: str
) -> tuple[AuSiL, list[dict[str, float]]]:
    """Prepares the data, trains (resuming), saves `ausil_model.npz`; returns model and history."""
    task = prepare_task(config, workdir)
    model, history = loop.train(task, config, workdir)
    save_model(model, workdir, {"num_steps": config.num_steps, "triplets": len(task.triplets)})
    return model, history


def run_training(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """The `train` binary's AuSiL entry: `train_ausil`, or without an annotation file the
    self-supervised `ndvr_jax.ausil.selfsup.run_selfsup` on `video_list`; returns the last logged
    metrics and where the model is."""
    if not config.annotation_file:
        return run_selfsup(config, workdir, resolve_path(config, config.video_list, workdir))
    _, history = train_ausil(config, workdir)
    rows = [r for r in history if "loss" in r]
    return {**(rows[-1] if rows else {}), "model": os.path.abspath(f"{workdir}/{MODEL_FILE}")}
