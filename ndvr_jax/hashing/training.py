"""Training the hashing network with the shared loop, saving it, exporting and scoring its codes.

`run_training(config, workdir)` (the `train` binary's `hashing` task): load the sources of
`config.data`, train `HashingTask` with `ndvr_jax.training.loop.train`, write the model
(`model.npz` + `model.json`), export the packed codes of the database and query videos
(`codes_database.npz`, `codes_queries.npz`: `ids`, source `rows`, `codes` [N, W] uint32,
`num_bits`), and score the Hamming ranking of the queries (`summary.json`). Every file is
written atomically.

With several processes each one encodes its share of every split (grain, sharded by JAX
process) and writes `codes_<split>-<i>-of-<n>.npz`; `load_codes` merges the shares.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import ml_collections
import numpy as np
from flax import nnx
from flax.traverse_util import flatten_dict, unflatten_dict
from jax.experimental import multihost_utils

from ndvr_jax.data.annotations import build_relevance
from ndvr_jax.hashing import codes, evaluate
from ndvr_jax.hashing.data import Example, labels_of, process_batches, training_dataset, video_id
from ndvr_jax.hashing.losses import hashing_loss
from ndvr_jax.hashing.model import HashingNet
from ndvr_jax.hashing.sources import VideoSets, load_video_sets
from ndvr_jax.io.atomic import save_json_atomic, save_npz_atomic
from ndvr_jax.training import loop


class HashingTask:
    """`TrainTask` of the hashing network: shuffled global batches of fixed-length clips."""

    def __init__(self, config: ml_collections.ConfigDict, source: Sequence[Example]):
        self.config = config
        self.feature_dim = int(np.shape(source[0]["features"])[1])
        self.num_classes = int(labels_of(source).max()) + 1
        if self.num_classes < 2:
            raise ValueError("hashing needs at least two classes among the training videos")
        self.dataset = training_dataset(source, config.batch_size, config.max_frames, config.seed)
        # The same example stream in batches of one process's rows: global batch s is rows
        # s·n … s·n + n - 1 of it (n processes), so each process reads only its own examples.
        self.processes = jax.process_count()
        self.process_rows = training_dataset(
            source, config.batch_size // self.processes, config.max_frames, config.seed
        )

    def create_model(self, rngs: nnx.Rngs) -> HashingNet:
        return HashingNet(
            self.feature_dim, self.config.num_bits, self.num_classes,
            tuple(self.config.hidden_sizes), rngs=rngs,
        )  # fmt: skip

    def batch(self, step: int) -> dict[str, np.ndarray]:
        return self.dataset[step]

    def process_batch(self, step: int) -> dict[str, np.ndarray]:
        """This process's contiguous rows of `batch(step)`, loading only those examples."""
        return self.process_rows[step * self.processes + jax.process_index()]

    def loss(self, model: HashingNet, batch: dict[str, jax.Array], rng: jax.Array):
        loss = self.config.loss
        return hashing_loss(
            model(batch["frames"], batch["mask"]),
            batch["label"],
            alpha=loss.alpha,
            beta=loss.beta,
            quantization=loss.quantization,
            margin=loss.margin,
            mining=loss.mining,
        )


def _pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
    return np.pad(x, [(0, rows - len(x))] + [(0, 0)] * (x.ndim - 1))


def encode(
    model: HashingNet, source: Sequence[Example], batch_size: int, max_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    """Source rows of this process's share and their [M, n] sigmoid bits."""
    graphdef, state = nnx.split(model)
    forward = jax.jit(lambda state, f, m: nnx.merge(graphdef, state)(f, m).bits)
    rows, bits = [np.zeros(0, np.int64)], [np.zeros((0, model.hash.out_features), np.float32)]
    for batch in process_batches(source, batch_size, max_frames):
        n = len(batch["index"])
        frames, mask = (_pad_rows(batch[k], batch_size) for k in ("frames", "mask"))
        rows.append(batch["index"])
        bits.append(np.asarray(forward(state, frames, mask))[:n])
    return np.concatenate(rows), np.concatenate(bits)


def save_model(workdir: str | Path, model: HashingNet, meta: dict[str, Any]) -> None:
    """`model.npz` (parameters by path) and `model.json` (shapes and `meta`)."""
    params = flatten_dict(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    arrays = {"/".join(map(str, path)): np.asarray(v) for path, v in params.items()}
    save_npz_atomic(Path(workdir) / "model.npz", **arrays)
    save_json_atomic(Path(workdir) / "model.json", meta)


def load_model(workdir: str | Path) -> HashingNet:
    """The network `save_model` wrote."""
    meta = json.loads((Path(workdir) / "model.json").read_text())
    dims = (meta["feature_dim"], meta["num_bits"], meta["num_classes"],
            tuple(meta.get("hidden_sizes", ())))  # fmt: skip
    model = nnx.eval_shape(lambda: HashingNet(*dims, rngs=nnx.Rngs(0)))
    state = nnx.state(model, nnx.Param)
    with np.load(Path(workdir) / "model.npz") as params:
        paths = {
            tuple(int(p) if p.isdigit() else p for p in k.split("/")): v for k, v in params.items()
        }  # fmt: skip (list layers are numbered)
        nnx.replace_by_pure_dict(state, unflatten_dict(paths))
    nnx.update(model, state)
    return model


def _codes_path(workdir: str | Path, split: str, index: int, count: int) -> Path:
    suffix = "" if count == 1 else f"-{index:05d}-of-{count:05d}"
    return Path(workdir) / f"codes_{split}{suffix}.npz"


def export_codes(
    workdir: str | Path, split: str, model: HashingNet, source: Sequence[Example], config
) -> None:
    """Writes this process's share of `source` as packed codes."""
    rows, bits = encode(model, source, config.eval_batch_size, config.eval_max_frames)
    save_npz_atomic(
        _codes_path(workdir, split, jax.process_index(), jax.process_count()),
        ids=np.array([video_id(source[int(r)]) for r in rows]),
        rows=rows,
        codes=np.asarray(codes.pack_bits(codes.binarize(bits))),
        num_bits=np.int32(bits.shape[1]),
    )


def load_codes(workdir: str | Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(ids, packed codes) of a split in source order, merged from every process's file."""
    count = max(1, len(list(Path(workdir).glob(f"codes_{split}-*-of-*.npz"))))
    parts = []
    for index in range(count):
        with np.load(_codes_path(workdir, split, index, count)) as f:
            parts.append((f["rows"], f["ids"], f["codes"]))
    rows, ids, packed = (np.concatenate(x) for x in zip(*parts, strict=True))
    order = np.argsort(rows)
    return ids[order], packed[order]


def relevance_of(
    sets: VideoSets, query_ids: Sequence[str], db_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """[Q, N] relevance and rank mask: the annotation's protocol, or else class equality."""
    if sets.annotation is not None:
        relevance = build_relevance(sets.annotation, query_ids, db_ids, sets.protocol)
        return relevance.relevance, relevance.mask
    return evaluate.class_relevance(
        labels_of(sets.queries), labels_of(sets.database), query_ids, db_ids
    )


def run_training(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """Trains, saves the model, exports codes and returns (and writes) the retrieval summary."""
    sets = load_video_sets(config.data)
    task = HashingTask(config, sets.train)
    start = time.perf_counter()
    model, history = loop.train(task, config, workdir)
    train_seconds = time.perf_counter() - start
    meta = dict(
        feature_dim=task.feature_dim, num_bits=config.num_bits, num_classes=task.num_classes,
        hidden_sizes=list(config.hidden_sizes),
    )  # fmt: skip
    if jax.process_index() == 0:
        save_model(workdir, model, meta)
    for split in ("database", "queries"):
        export_codes(workdir, split, model, getattr(sets, split), config)
    multihost_utils.sync_global_devices("hashing codes exported")
    (db_ids, db_codes), (q_ids, q_codes) = (load_codes(workdir, s) for s in ("database", "queries"))
    relevance, mask = relevance_of(sets, q_ids, db_ids)
    losses = [row for row in history if "loss" in row]
    summary = {
        **meta,
        "bytes_per_video": evaluate.bytes_per_video(config.num_bits),
        "num_train": len(sets.train),
        "num_database": len(db_ids),
        "num_queries": len(q_ids),
        "num_steps": config.num_steps,
        "train_seconds": train_seconds,
        "final_loss": losses[-1]["loss"] if losses else float("nan"),
        **evaluate.hamming_metrics(q_codes, db_codes, relevance, mask, config.eval_ks),
    }
    if jax.process_index() == 0:
        save_json_atomic(Path(workdir) / "summary.json", summary)
    return summary
