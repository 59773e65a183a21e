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
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ml_collections
import numpy as np
from absl import logging

from ndvr_jax import search, sharding
from ndvr_jax.dml.augment import augment_frames, sample_chain
from ndvr_jax.dml.training import build_task, train_dml
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.features.visual import frame_model
from ndvr_jax.io import video as video_io
from ndvr_jax.io.atomic import save_npz_atomic
from ndvr_jax.io.store import read_id_path_list
from ndvr_jax.progress import Progress

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
) -> tuple[np.ndarray, np.ndarray]:
    """`compute_views`' vectors and groups, cached in `<workdir>/selfsup_views.npz`."""
    path = Path(workdir) / VIEWS_FILE
    if path.is_file():
        with np.load(path) as data:
            return data["features"], data["groups"]
    features, groups, ids = compute_views(config)
    Path(workdir).mkdir(parents=True, exist_ok=True)
    save_npz_atomic(path, features=features, groups=groups, ids=np.array(ids))
    logging.info("%d vectors of %d videos and their copies in %s", len(features), len(ids), path)
    return features, groups


def run_training(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """The `train` binary's `dml_selfsup` entry: copies, then in-batch mining into `workdir`."""
    features, groups = load_or_compute_views(config, workdir)
    config = ml_collections.ConfigDict(config.to_dict())
    config.mode = "mining"
    _, history = train_dml(config, workdir, build_task(config, features=features, groups=groups))
    rows = [r for r in history if "loss" in r]
    return {**(rows[-1] if rows else {}), "network": os.path.abspath(workdir)}
