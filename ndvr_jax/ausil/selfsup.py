"""Self-supervised AuSiL training on any unlabelled list of videos (`<id>\\t<path>` lines).

No annotation: a *view* is a random span of a collection video's audio after a random chain of
the copy distortions of `ndvr_jax.ausil.augment`; its positive is the video itself (a crop that
holds the span), its negatives the other videos of the global batch, the hardest of them mined
in-batch (`hardest_negatives`: never the video itself, as a batch draws distinct videos).
Segment features of every video and view are computed once with the extraction's audio CNN
(`AudioFeaturizer`) and cached per video in `<workdir>/views/` (resumable).

Every `validation_every`-th video (sorted ids) is held out with its own views: the PCA whitening
is fitted on the training videos and views only; every `eval_every` steps the model ranks the
held-out videos for each held-out view (DAVR-style mAP, one relevant video per view), and the
best checkpoint by that mAP is the one written to `<workdir>/ausil_model.npz`. Its `.json`
records `mode`: "untrained" when the whole model did not beat its own PCA whitening + Chamfer on
that split, and the workdir then scores that way by default (`ndvr_jax.ausil.scoring`).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import zlib
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from ndvr_jax import sharding
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
from ndvr_jax.ausil.saved import MODEL_FILE, fit_or_load_pca, init_ausil, save_model
from ndvr_jax.ausil.scoring import Scorer, untrained_model
from ndvr_jax.backbones.mac import mac
from ndvr_jax.features.audio import audio_backbone
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.io import audio as audio_io
from ndvr_jax.io.atomic import save_json_atomic, save_npz_atomic
from ndvr_jax.io.store import read_id_path_list
from ndvr_jax.progress import Progress
from ndvr_jax.training import loop
from ndvr_jax.training.heldout import retrieval_map, validation_split

VIEWS_DIR = "views"
BACKGROUND_POOL = 8  # recent tracks kept as mixing backgrounds
BACKGROUND_SECONDS = 20.0


class AudioFeaturizer:
    """Waveform → segment features `[S, D]` with an extraction config's audio backbone, exactly
    as `extract --config.mode=audio` computes them for a file."""

    def __init__(self, extract_config: ml_collections.ConfigDict):
        self.backbone = audio_backbone(extract_config.audio.backbone)
        self.sample_rate = self.backbone.settings.sample_rate
        model, _ = self.backbone.create(extract_config.audio.weights)
        self._encode = BatchEncoder(
            model, mac, sharding.make_mesh(1), extract_config.audio.batch_size
        )

    @property
    def hop_seconds(self) -> float:
        """Seconds between consecutive segments."""
        settings = self.backbone.settings
        return settings.hop_frames * settings.hop_length / settings.sample_rate

    def decode(self, video_id: str, path: str) -> np.ndarray | None:
        """The file's mono waveform at the backbone's rate; None (logged) if unusable."""
        try:
            samples = audio_io.decode_audio(path, self.sample_rate).samples
        except audio_io.AudioDecodeError as e:
            logging.warning("skipping %s: %s", video_id, e)
            return None
        return samples if samples.size else None

    def __call__(self, samples: np.ndarray) -> np.ndarray | None:
        """Segment features, or None if the waveform gives no window (silence)."""
        windows = self.backbone.waveform_windows(samples, self.backbone.settings).windows
        return self._encode(windows) if len(windows) else None


@dataclasses.dataclass(frozen=True)
class View:
    """An augmented copy: its source video, where its span starts there (in segments), and the
    distortions applied."""

    source: str
    start: int
    applied: str


def _video_views(
    video_id: str,
    samples: np.ndarray,
    featurize: AudioFeaturizer,
    copies: int,
    seconds: tuple[float, float],
    seed: int,
    augment: AudioAugmentConfig,
    backgrounds: Sequence[np.ndarray],
) -> tuple[dict[str, np.ndarray], dict[str, View]]:
    """Features of one video (`"video"`) and of its views (`"aug<k>"`), and the views."""
    rate = featurize.sample_rate
    original = featurize(samples)
    if original is None:
        return {}, {}
    features, views = {"video": original}, {}
    for k in range(copies):
        rng = np.random.default_rng((seed, zlib.crc32(video_id.encode()), k))
        span = int(min(rng.uniform(*seconds), samples.size / rate) * rate)
        start = int(rng.integers(samples.size - span + 1))
        distorted, applied = random_augment(
            samples[start : start + span], rate, rng, augment, backgrounds
        )
        view = featurize(distorted)
        if view is not None:
            features[f"aug{k}"] = view
            start_segment = round(start / rate / featurize.hop_seconds)
            views[f"aug{k}"] = View(video_id, start_segment, ", ".join(applied))
    return features, views


def make_views(
    entries: Sequence[tuple[str, str]],
    featurize: AudioFeaturizer,
    copies: int,
    seconds: tuple[float, float],
    seed: int,
    augment: AudioAugmentConfig | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, View]]:
    """Features of every usable video (`{id: [S, D]}`) and of `copies` views each
    (`"<id>~aug<k>"`), a view's span lasting `seconds` (uniform; at most the whole track), its
    distortions drawn from a seed of (`seed`, id, k); the mixing backgrounds are recent other
    tracks. With `cache_dir`, each video's result is kept there (`<id>.npz` + `<id>.json`) and
    reused, so an interrupted run resumes and a grown list computes only its new videos."""
    features: dict[str, np.ndarray] = {}
    views: dict[str, View] = {}
    backgrounds: deque[np.ndarray] = deque(maxlen=BACKGROUND_POOL)
    augment = augment or AudioAugmentConfig()
    progress = Progress(len(entries), "views", "videos")
    for video_id, path in entries:
        progress.update(1)
        cached = Path(cache_dir, video_id) if cache_dir else None
        if cached and cached.with_suffix(".json").is_file():
            meta = json.loads(cached.with_suffix(".json").read_text())
            with np.load(cached.with_suffix(".npz")) as data:
                found = {k: data[k] for k in data.files}
            found_views = {k: View(**v) for k, v in meta.items()}
        else:
            samples = featurize.decode(video_id, path)
            found, found_views = ({}, {}) if samples is None else _video_views(
                video_id, samples, featurize, copies, seconds, seed, augment, list(backgrounds)
            )  # fmt: skip
            if samples is not None:
                backgrounds.append(samples[: int(BACKGROUND_SECONDS * featurize.sample_rate)])
            if cached:
                save_npz_atomic(cached.with_suffix(".npz"), **found)
                meta = {k: dataclasses.asdict(v) for k, v in found_views.items()}
                save_json_atomic(cached.with_suffix(".json"), meta)
        if "video" in found:
            features[video_id] = found["video"]
        for k, view in found_views.items():
            features[f"{video_id}~{k}"] = found[k]
            views[f"{video_id}~{k}"] = view
    return features, views


def cached_views(
    workdir: str, entries: Sequence[tuple[str, str]], config: ml_collections.ConfigDict
) -> tuple[dict[str, np.ndarray], dict[str, View]]:
    """`make_views` of the config, each video's cached in `<workdir>/views/`."""
    aug = config.augment
    return make_views(
        entries,
        AudioFeaturizer(config.extract),
        aug.copies_per_video,
        (aug.min_seconds, aug.max_seconds),
        config.seed,
        cache_dir=Path(workdir) / VIEWS_DIR,
    )


def hardest_negatives(similarity: jax.Array) -> jax.Array:
    """`[B]` hardest negative per anchor of a `[B, B]` anchor × positive matrix: the row's maximum
    off the diagonal (the diagonal is the anchor's own video)."""
    eye = jnp.eye(similarity.shape[0], dtype=bool)
    return jnp.max(jnp.where(eye, -jnp.inf, similarity), axis=1)


@dataclasses.dataclass
class SelfSupTask:
    """`loop.TrainTask`: views against their videos, negatives mined in the global batch."""

    config: ml_collections.ConfigDict
    features: Mapping[str, np.ndarray]
    views: Mapping[str, View]  # the training views only
    pca: PCAWhitening

    def __post_init__(self):
        by_source: dict[str, list[str]] = {}
        for key in sorted(self.views):
            by_source.setdefault(self.views[key].source, []).append(key)
        self.by_source = by_source
        self.sources = sorted(by_source)
        if len(self.sources) < max(2, self.config.batch_size):
            raise ValueError(
                f"{len(self.sources)} training videos with views; a batch needs batch_size "
                f"({self.config.batch_size}) distinct ones"
            )
        # a crop holds at most max_segments; one shorter than 10 is repeated to under 20
        self.length = bucket_length(max(self.config.max_segments, 2 * MIN_SEGMENTS - 2))
        self.dims = next(iter(self.features.values())).shape[1]

    def create_model(self, rngs: nnx.Rngs) -> AuSiL:
        model = init_ausil(self.dims, self.pca.weights.shape[1], rngs.params())
        model.set_whitening(self.pca)
        return model

    def _pair(self, source: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """A random view of `source` and a crop of `source` that holds the view's span."""
        most = self.config.max_segments
        keys = self.by_source[source]
        key = keys[int(rng.integers(len(keys)))]
        view = self.features[key]
        offset = int(rng.integers(len(view) - most + 1)) if len(view) > most else 0
        anchor = view[offset : offset + most]
        video = self.features[source]
        slack = int(rng.integers(most - len(anchor) + 1))
        start = int(np.clip(self.views[key].start + offset - slack, 0, max(0, len(video) - most)))
        return anchor, video[start : start + most]

    def batch(self, step: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng((self.config.seed, step))
        chosen = rng.choice(len(self.sources), self.config.batch_size, replace=False)
        pairs = [self._pair(self.sources[i], rng) for i in chosen]
        batch = {}
        for role, videos in zip(("anchor", "positive"), zip(*pairs, strict=True), strict=True):
            batch[role], batch[f"{role}_len"] = pack_videos(list(videos), self.length)
        return batch

    def loss(
        self, model: AuSiL, batch: dict[str, jax.Array], rng: jax.Array
    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        del rng
        anchor, positive = model.embed(batch["anchor"]), model.embed(batch["positive"])
        n = anchor.shape[0]
        ai, pi = jnp.repeat(jnp.arange(n), n), jnp.tile(jnp.arange(n), n)
        out = model.compare(
            anchor[ai], batch["anchor_len"][ai], positive[pi], batch["positive_len"][pi]
        )
        similarity = out.similarity.reshape(n, n)
        pos, neg = jnp.diagonal(similarity), hardest_negatives(similarity)
        triplet = ausil_triplet_loss(pos, neg, self.config.margin)
        reg = similarity_regularisation(out.raw, out.rows, out.cols)
        metrics = {
            "triplet": triplet,
            "regularisation": reg,
            "positive_similarity": jnp.mean(pos),
            "hardest_negative_similarity": jnp.mean(neg),
            "batch_top1": jnp.mean((pos > neg).astype(jnp.float32)),
        }
        return triplet + self.config.reg_weight * reg, metrics


def validation_map(
    scorer: Scorer,
    features: Mapping[str, np.ndarray],
    views: Mapping[str, View],
    held: Sequence[str],
) -> float:
    """mAP of the held-out views against the held-out videos (NaN if there are none)."""
    queries = [k for k in sorted(views) if views[k].source in held]
    if not queries:
        return float("nan")
    database = list(held)
    matrix = scorer.matrix([features[k] for k in queries], [features[v] for v in database])
    return retrieval_map(matrix, [database.index(views[k].source) for k in queries])


def run_selfsup(config: ml_collections.ConfigDict, workdir: str, video_list: str) -> dict[str, Any]:
    """Trains AuSiL on `video_list` without labels; writes the best model by validation mAP."""
    began = time.time()
    entries = read_id_path_list(video_list)
    features, views = cached_views(workdir, entries, config)
    train_ids, held = validation_split(
        [v for v, _ in entries if v in features], config.validation_every
    )
    train_set = set(train_ids)
    train_views = {k: v for k, v in views.items() if v.source in train_set}
    pca = fit_or_load_pca(
        {k: f for k, f in features.items() if k in train_set or k in train_views},
        config.pca_dims,
        workdir,
    )
    task = SelfSupTask(config, features, train_views, pca)
    mesh = sharding.make_mesh(1)
    batch = config.similarity.batch_size
    untrained = validation_map(
        Scorer(untrained_model(pca), False, mesh, batch), features, views, held
    )
    best_file = Path(workdir, MODEL_FILE).with_suffix(".json")
    best = (
        json.loads(best_file.read_text()).get("validation_map", -1.0)
        if best_file.is_file()
        else -1.0
    )

    scorer = Scorer(task.create_model(nnx.Rngs(0)), True, mesh, batch)

    def evaluate(model: AuSiL, step: int) -> dict[str, float]:
        nonlocal best
        scorer.set_model(model)
        score = validation_map(scorer, features, views, held)
        if score > best or not held:  # nothing held out: the last model
            best = score
            save_model(model, workdir, {"step": step, "validation_map": score})
        logging.info("step %d: validation mAP %.4f (best %.4f)", step, score, best)
        return {"validation_map": score}

    _, history = loop.train(task, config, workdir, evaluate)
    rows = [r for r in history if "loss" in r]
    meta = json.loads(best_file.read_text())
    # how the workdir scores by default: the comparator only if it beat its own PCA + Chamfer
    mode = "trained" if meta["validation_map"] > untrained or not held else "untrained"
    meta.update(validation_map_untrained=untrained, mode=mode)
    save_json_atomic(best_file, meta)
    return {
        **(rows[-1] if rows else {}),
        "validation_map": meta["validation_map"],
        "validation_map_untrained": untrained,
        "best_step": meta["step"],
        "mode": mode,
        "train_videos": len(train_ids),
        "validation_videos": len(held),
        "views": len(views),
        "seconds": round(time.time() - began, 1),
        "model": str(Path(workdir, MODEL_FILE).resolve()),
    }
