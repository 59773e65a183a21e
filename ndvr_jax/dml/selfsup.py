"""Self-supervised DML on any unlabelled list of videos (`<id>\\t<path>` lines), no annotation.

Each video gets `augment.copies_per_video` copies: its decoded frames under a random chain of
visual copy transformations (`ndvr_jax.dml.augment`; `inset` shows the previous video of the list
inside it). Frames of videos and copies go through `extract`'s visual backbone and MAC
(`config.extract`, as `python -m ndvr_jax.extract` computes them), then ndvr-dml's global vector.
A video and its copies form one group; `ndvr_jax.dml.training.MiningTask` then mines in the batch:
for each copy (anchor) the video itself or another of its copies is the positive and the other
videos of the batch (never the video itself, which is in the anchor's group) the negatives,
`mining.strategy` (default batch_hard: the hardest of each). The vectors are computed once and
cached in `<workdir>/selfsup_views.npz`.

Every `validation_every`-th video (sorted ids) is held out with its copies: every `eval_every`
steps each held-out copy ranks the held-out videos by the network's cosine (mAP, one relevant
video per copy), and the best network by that mAP is the one written to the workdir. Its
`dml_model.json` also records `validation_map_untrained`, the same ranking by the global vectors
themselves.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from ndvr_jax import search, sharding
from ndvr_jax.dml.augment import augment_frames, sample_chain
from ndvr_jax.dml.embed import MODEL_FILE, embed_early, save_dml
from ndvr_jax.dml.model import DML
from ndvr_jax.dml.training import build_task, train_dml
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.features.visual import frame_model
from ndvr_jax.io import video as video_io
from ndvr_jax.io.atomic import save_npz_atomic
from ndvr_jax.io.store import read_id_path_list
from ndvr_jax.progress import Progress
from ndvr_jax.training.heldout import retrieval_map, validation_split

VIEWS_FILE = "selfsup_views.npz"


def compute_views(config: ml_collections.ConfigDict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Global vectors `[N, D]` of each readable video and its copies, their group labels `[N]`
    (the video's index) and the ids of the videos; unreadable files are skipped (logged)."""
    extract = config.extract
    if extract.get("regions") or extract.get("zoom") or extract.get("insets"):
        raise ValueError("self-supervised DML takes whole-frame MAC (extract.regions = zoom = 0, "
                         "insets off)")  # fmt: skip
    model, pool = frame_model(extract)
    encoder = BatchEncoder(
        model, pool, sharding.make_mesh(1), extract.batch_size, extract.micro_batch
    )
    rng = np.random.default_rng(config.seed)
    copies_each = config.augment.copies_per_video
    entries = read_id_path_list(config.video_list)
    videos, groups, ids, previous = [], [], [], None
    progress = Progress(len(entries), "copies", "videos")
    for video_id, path in entries:
        try:
            decoded = video_io.decode_video(path, extract.fps, extract.size, extract.resize)
        except video_io.VideoDecodeError as e:
            logging.warning("skipping %s: %s", video_id, e)
            progress.update(1)
            continue
        frames, stamps = decoded.frames, decoded.timestamps
        chains = [sample_chain(rng, config.augment.max_transforms) for _ in range(copies_each)]
        copies = [augment_frames(frames, stamps, c, previous, extract.resize) for c in chains]
        videos += [encoder(f) for f in (frames, *copies)]
        groups += [len(ids)] * (1 + len(copies))
        ids.append(video_id)
        previous = frames
        progress.update(1, frames=len(frames) * (1 + len(copies)))
    if len(ids) < 2:
        raise ValueError(f"{config.video_list}: fewer than two readable videos to train on")
    return search.global_vectors(videos), np.array(groups, np.int64), ids


def load_or_compute_views(
    config: ml_collections.ConfigDict, workdir: str | os.PathLike
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`compute_views`' vectors, groups and video ids, cached in `<workdir>/selfsup_views.npz`."""
    path = Path(workdir) / VIEWS_FILE
    if path.is_file():
        with np.load(path) as data:
            return data["features"], data["groups"], [str(v) for v in data["ids"]]
    features, groups, ids = compute_views(config)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    save_npz_atomic(path, features=features, groups=groups, ids=np.array(ids))
    logging.info("%d vectors of %d videos and their copies in %s", len(features), len(ids), path)
    return features, groups, ids


def validation_rows(groups: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(query rows, database rows) of the held-out groups: their copies, and their videos (the
    first row of each group)."""
    first = np.r_[True, groups[1:] != groups[:-1]]
    in_held = np.isin(groups, held)
    return np.flatnonzero(in_held & ~first), np.flatnonzero(in_held & first)


def validation_map(
    vectors: np.ndarray, groups: np.ndarray, queries: np.ndarray, database: np.ndarray
) -> float:
    """mAP of the copies `queries` ranking the videos `database` by cosine of `vectors`."""
    if not len(queries):
        return float("nan")
    unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    matrix = unit[queries] @ unit[database].T
    column = {int(g): k for k, g in enumerate(groups[database])}
    return retrieval_map(matrix, [column[int(g)] for g in groups[queries]])


def run_training(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """The `train` binary's `dml_selfsup` entry: copies, then in-batch mining into `workdir`;
    the network kept is the best on the held-out videos (the last when none is held out)."""
    features, groups, ids = load_or_compute_views(config, workdir)
    _, held_ids = validation_split(ids, config.get("validation_every", 0))
    held = np.array([ids.index(v) for v in held_ids], np.int64)
    queries, database = validation_rows(groups, held)
    train = ~np.isin(groups, held)
    untrained = validation_map(features, groups, queries, database)
    config = ml_collections.ConfigDict(config.to_dict())
    config.mode = "mining"
    meta_file = Path(workdir) / MODEL_FILE
    best = (
        json.loads(meta_file.read_text()).get("validation_map", -1.0)
        if meta_file.is_file()
        else -1.0
    )

    def evaluate(model: DML, step: int) -> dict[str, float]:
        nonlocal best
        score = validation_map(embed_early(model, features), groups, queries, database)
        if score > best:
            best = score
            save_dml(model, workdir, mode="mining", step=step, validation_map=score,
                     validation_map_untrained=untrained)  # fmt: skip
        logging.info("step %d: validation mAP %.4f (best %.4f)", step, score, best)
        return {"validation_map": score}

    task = build_task(config, features=features[train], groups=groups[train])
    held_out = bool(len(queries))
    _, history = train_dml(config, workdir, task, evaluate if held_out else None, save=not held_out)
    rows = [r for r in history if "loss" in r]
    meta = json.loads(meta_file.read_text())
    return {
        **(rows[-1] if rows else {}),
        "validation_map": meta.get("validation_map", float("nan")),
        "validation_map_untrained": untrained,
        "best_step": meta.get("step", meta.get("steps")),
        "train_videos": len(ids) - len(held),
        "validation_videos": len(held),
        "network": os.path.abspath(workdir),
    }
