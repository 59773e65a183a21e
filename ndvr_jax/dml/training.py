"""Training the DML network: offline triplets (the original) or in-batch mining from group labels.

Two `ndvr_jax.training.loop.TrainTask`s feed the shared loop (checkpoints, resume, NaN guard,
metrics, progress):

  `OfflineTripletTask`  the original: `<dataset>_triplets.npy` rows (anchor, positive, negative)
                        into `<dataset>_features.npy`, reshuffled every epoch (a fixed seed per
                        epoch, so a resumed run sees the same batches), `batch_size` triplets a
                        step; the last batch of an epoch is padded and the padding is masked out.
                        Loss `max(0, ‖a−p‖² − ‖a−n‖² + γ)`
                        (`ndvr_jax.training.losses.triplet_loss`).
                        A batch holds each video of its triplets once (`x`, zero-padded to a few
                        fixed sizes) with the triplets as positions into it: the network embeds
                        every video once however many triplets share it (anchors and positives
                        repeat a lot in real triplet sets), which is exact.
  `MiningTask`          P×K sampling from group labels (`groups_per_batch` groups with at least
                        two videos, `videos_per_group` of each, plus `background` videos of no
                        group or of a group too small to sample), then batch-all, batch-hard or
                        semi-hard mining over the whole global batch
                        (`ndvr_jax.training.losses`). Labels: >= 0 a group, -1 no group (a
                        negative of every video), -2 left out (never sampled, e.g. evaluation
                        queries).
  `SourceMiningTask`    the same mining on batches of a labelled source read through grain
                        (`config.data.source = "tfds"`: `tfds.data_source` of
                        `data.tfds_name`/`data.train_split` in `data.tfds_data_dir`, e.g.
                        `ndvr_demo_features/fold0of2`, whose labels are the copy groups of the
                        queries not held out): `batch_size` examples a step, every example once
                        an epoch in a new order each epoch, each process reading only its rows
                        (`ndvr_jax.data.grain_source`); an example's input is the global vector
                        of its frames (`search.global_vectors`, as `embed_early` computes it).

Both log `active_fraction` (the fraction of triplets with a positive loss), `num_triplets`,
`pos_dist` and `neg_dist` with the loss. `l2_regularization` adds the original's weight decay,
TF's `l2_regularizer(λ)` on every weight and bias: `λ · Σ w² / 2` (the original's default 1e-5
makes it effectively zero; decoupled AdamW decay is `optimizer.weight_decay`).

The trained network is written beside the checkpoints as `dml_model.json` (layer sizes and
activation) and `dml_params.npz` (one array per parameter), which `ndvr_jax.dml.embed.load_dml`
reads back. `run_training` is the `train` binary's entry for `config.task = "dml"`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from flax import nnx

from ndvr_jax.data.grain_source import EpochBatches, tfds_source
from ndvr_jax.dml.embed import save_dml
from ndvr_jax.dml.groups import LEFT_OUT
from ndvr_jax.dml.model import DML
from ndvr_jax.search import global_vectors
from ndvr_jax.training import loop, losses

__all__ = [
    "MiningTask",
    "OfflineTripletTask",
    "SourceMiningTask",
    "TrainingDataError",
    "build_task",
    "check_features",
    "check_groups",
    "check_triplets",
    "create_dml",
    "default_dml_config",
    "inject_triplets",
    "load_npy",
    "resolve_steps",
    "shrink_dml_config",
    "summarise_history",
    "train_dml",
    "run_training",
]

Batch = dict[str, np.ndarray]


class TrainingDataError(ValueError):
    """Training features, triplets or groups are missing or malformed."""


# ---------------------------------------------------------------------------------------------
# Configs.


def default_dml_config() -> ml_collections.ConfigDict:
    """The paper's setting (ndvr-dml `train_dml.py` defaults); `configs/dml_*.py` start here.

    Offline VCDB triplets, Adam with learning rate 1e-6, 1000 triplets a batch, 10 epochs,
    margin 1, MLP 2000-1000-500 with tanh and L2 normalisation, evaluated on CC_WEB_VIDEO.
    The loop's keys are `ndvr_jax.training.loop.default_train_config`'s; `evaluate` holds the
    settings of `python -m ndvr_jax.evaluate` that differ from its defaults
    (`ndvr_jax.jobs.evaluate.default_eval_config`): the CC_WEB_VIDEO files.
    """
    config = loop.default_train_config()
    config.task = "dml"
    config.num_steps = 0  # 0: `epochs` passes over the triplets
    config.epochs = 10
    config.batch_size = 1000  # triplets a step (offline mode)
    config.checkpoint_every = 1000
    # `weight_decay` is decoupled (AdamW) decay; the original's is loss.l2_regularization.
    config.optimizer.update(name="adam", learning_rate=1e-6)
    config.mode = "offline"  # offline (the original's triplets) | mining (in-batch, from groups)
    config.data = ml_collections.ConfigDict(
        dict(
            features="output_data/vcdb_features.npy",
            triplets="output_data/vcdb_triplets.npy",
            groups="output_data/vcdb_groups.npy",  # mining mode
            source="files",  # files (the three above) | tfds (mining from a TFDS source)
            tfds_name="ndvr_demo_features/fold0of2",
            tfds_data_dir="tensorflow_datasets",
            train_split="train",
            inject_features="",  # injection of evaluation triplets (offline mode)
            inject_triplets="",
            max_injected=10000,
        )
    )
    config.model = ml_collections.ConfigDict(
        dict(
            hidden_sizes=(2000, 1000),
            embedding_dim=500,
            activation="tanh",
            compute_dtype="float32",  # or "bfloat16": bf16 matmuls, float32 parameters
        )
    )
    # l2_regularization: the original's `--weight_decay` (TF `l2_regularizer`; 1e-5 is
    # effectively zero).
    config.loss = ml_collections.ConfigDict(dict(margin=1.0, l2_regularization=1e-5))
    config.mining = ml_collections.ConfigDict(
        dict(strategy="batch_hard", groups_per_batch=64, videos_per_group=4, background=256)
    )
    config.evaluate = ml_collections.ConfigDict(
        dict(
            dataset_path="datasets/cc_web_video.pickle",
            features="output_data/cc_web_video_features.npy",
        )
    )
    return config


def shrink_dml_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The `:runlocal` variants' common part: a tiny network and batches, one epoch."""
    config.epochs = 1
    config.batch_size = 64
    config.log_every = 5
    config.model.update(hidden_sizes=(64,), embedding_dim=32)
    config.mining.update(groups_per_batch=4, videos_per_group=2, background=8)
    return config


# ---------------------------------------------------------------------------------------------
# Inputs.


def load_npy(path: str | os.PathLike, what: str) -> np.ndarray:
    """Loads a `.npy` file without pickles, with an error that says what was expected."""
    if not path or not os.path.isfile(path):
        raise TrainingDataError(f"{what} file {os.fspath(path)!r} does not exist")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise TrainingDataError(f"cannot read {what} file {os.fspath(path)!r}: {e}") from e


def check_features(features: np.ndarray, what: str = "features") -> np.ndarray:
    """[N, D] float32 features with finite values (the offending rows are named otherwise)."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] == 0 or features.shape[1] == 0:
        raise TrainingDataError(f"{what}: expected a non-empty [N, D] array, got {features.shape}")
    if not np.issubdtype(features.dtype, np.floating):
        raise TrainingDataError(f"{what}: expected floats, got {features.dtype}")
    bad = np.flatnonzero(~np.isfinite(features).all(axis=1))
    if bad.size:
        shown = ", ".join(map(str, bad[:10])) + (", ..." if bad.size > 10 else "")
        raise TrainingDataError(f"{what}: {bad.size} rows contain NaN or inf (rows {shown})")
    return features.astype(np.float32, copy=False)


def check_triplets(triplets: np.ndarray, num_rows: int, what: str = "triplets") -> np.ndarray:
    """[T, 3] int64 row triplets, T > 0, every row index in [0, num_rows)."""
    triplets = np.asarray(triplets)
    if triplets.ndim != 2 or triplets.shape[1] != 3:
        raise TrainingDataError(f"{what}: expected [T, 3] rows, got shape {triplets.shape}")
    if len(triplets) == 0:
        raise TrainingDataError(f"{what}: no triplets (no negative was closer than a positive?)")
    if not np.issubdtype(triplets.dtype, np.integer):
        raise TrainingDataError(f"{what}: expected integer rows, got {triplets.dtype}")
    if triplets.min() < 0 or triplets.max() >= num_rows:
        raise TrainingDataError(
            f"{what}: rows must be in [0, {num_rows}) (the feature rows), got "
            f"[{triplets.min()}, {triplets.max()}]"
        )
    return triplets.astype(np.int64, copy=False)


def check_groups(groups: np.ndarray, num_rows: int, what: str = "groups") -> np.ndarray:
    """[N] int64 group labels (>= 0; -1 for none; -2 left out), one per feature row."""
    groups = np.asarray(groups)
    if groups.shape != (num_rows,) or not np.issubdtype(groups.dtype, np.integer):
        raise TrainingDataError(
            f"{what}: expected [{num_rows}] integer labels (one per feature row), got "
            f"{groups.dtype} {groups.shape}"
        )
    if groups.min(initial=0) < LEFT_OUT:
        raise TrainingDataError(f"{what}: labels must be >= 0, -1 (no group) or -2 (left out)")
    return groups.astype(np.int64, copy=False)


def inject_triplets(
    features: np.ndarray,
    triplets: np.ndarray,
    extra_features: np.ndarray,
    extra_triplets: np.ndarray,
    max_injected: int,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Adds up to `max_injected` random triplets of another set (the original's injection).

    The extra features are appended after `features` and the chosen extra triplets are shifted
    to point at them. Returns (features, triplets, number injected).
    """
    if extra_features.shape[1] != features.shape[1]:
        raise TrainingDataError(
            f"injected features are {extra_features.shape[1]}-d but the training features are "
            f"{features.shape[1]}-d"
        )
    count = min(max(0, int(max_injected)), len(extra_triplets))
    chosen = np.random.default_rng(seed).permutation(len(extra_triplets))[:count]
    return (
        np.concatenate([features, extra_features]),
        np.concatenate([triplets, extra_triplets[np.sort(chosen)] + len(features)]),
        count,
    )


# ---------------------------------------------------------------------------------------------
# Model.


def create_dml(in_features: int, model: ml_collections.ConfigDict, rngs: nnx.Rngs) -> DML:
    """The DML MLP of a config's `model` section (hidden_sizes, embedding_dim, activation, and
    compute_dtype: "float32", or "bfloat16" for bf16 matmuls on float32 parameters)."""
    return DML(
        in_features,
        tuple(model.hidden_sizes),
        model.embedding_dim,
        model.activation,
        compute_dtype=model.get("compute_dtype", "float32"),
        rngs=rngs,
    )


def _l2_penalty(model: nnx.Module) -> jax.Array:
    leaves = jax.tree.leaves(nnx.state(model, nnx.Param))
    return 0.5 * sum(jnp.sum(jnp.square(x)) for x in leaves)


def _with_l2(
    model: nnx.Module, loss: jax.Array, aux: dict[str, jax.Array], l2: float
) -> tuple[jax.Array, dict[str, jax.Array]]:
    if not l2:
        return loss, aux
    penalty = l2 * _l2_penalty(model)
    return loss + penalty, {**aux, "triplet_loss": loss, "l2_penalty": penalty}


# ---------------------------------------------------------------------------------------------
# Tasks.


class _DMLTask:
    """What both tasks share: the model and the loss's regulariser."""

    def __init__(self, in_features: int, config: ml_collections.ConfigDict):
        self.in_features = in_features
        self.model_config = config.model
        self.margin = float(config.loss.margin)
        self.l2 = float(config.loss.l2_regularization)
        self.seed = int(config.seed)

    def create_model(self, rngs: nnx.Rngs) -> DML:
        return create_dml(self.in_features, self.model_config, rngs)


class OfflineTripletTask(_DMLTask):
    """The original's training on precomputed triplets; see the module docstring."""

    def __init__(
        self, features: np.ndarray, triplets: np.ndarray, config: ml_collections.ConfigDict
    ):
        self.features = check_features(features)
        self.triplets = check_triplets(triplets, len(self.features))
        super().__init__(self.features.shape[1], config)
        self.batch_size = int(config.batch_size)
        self.steps_per_epoch = math.ceil(len(self.triplets) / self.batch_size)
        self.num_devices = int(config.num_devices)
        self._order: tuple[int, np.ndarray] | None = None

    def _epoch_order(self, epoch: int) -> np.ndarray:
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, rng.permutation(len(self.triplets)))
        return self._order[1]

    def _padded_rows(self, count: int) -> int:
        """`count` rounded up to a multiple of ~3·batch_size/32 that the devices divide (so a
        run compiles a few shapes), at most 3·batch_size."""
        # Called from the training loop (after any jax.distributed setup), not the constructor.
        devices = self.num_devices if self.num_devices > 0 else jax.device_count()
        step = -(-math.ceil(3 * self.batch_size / 32) // devices) * devices
        return min(-(-count // step) * step, 3 * self.batch_size)

    def batch(self, step: int) -> Batch:
        """`x` [R, D]: each video of the batch's triplets once, then zero rows; `triplets`
        [batch_size, 3] int32: (anchor, positive, negative) positions in `x`; `valid`."""
        epoch, index = divmod(step, self.steps_per_epoch)
        rows = self._epoch_order(epoch)[index * self.batch_size : (index + 1) * self.batch_size]
        valid = np.zeros(self.batch_size, bool)
        valid[: len(rows)] = True
        rows = np.pad(rows, (0, self.batch_size - len(rows)))
        videos, positions = np.unique(self.triplets[rows], return_inverse=True)
        x = np.zeros((self._padded_rows(len(videos)), self.features.shape[1]), np.float32)
        np.take(self.features, videos, axis=0, out=x[: len(videos)])
        triplets = positions.reshape(self.batch_size, 3).astype(np.int32)
        return {"x": x, "triplets": triplets, "valid": valid}

    def loss(self, model: DML, batch: Batch, rng: jax.Array) -> tuple[jax.Array, dict]:
        del rng
        e = model(batch["x"])
        anchor, positive, negative = (e[batch["triplets"][:, i]] for i in range(3))
        loss, aux = losses.triplet_loss(anchor, positive, negative, self.margin, batch["valid"])
        return _with_l2(model, loss, aux, self.l2)


class _InBatchMining(_DMLTask):
    """What both mining tasks share: the strategy and the mined loss of a labelled batch."""

    def __init__(self, in_features: int, config: ml_collections.ConfigDict):
        super().__init__(in_features, config)
        self.strategy = config.mining.strategy
        if self.strategy not in losses.MINING_STRATEGIES:
            raise ValueError(
                f"unknown mining strategy {self.strategy!r}; use one of "
                f"{sorted(losses.MINING_STRATEGIES)}"
            )

    def loss(self, model: DML, batch: Batch, rng: jax.Array) -> tuple[jax.Array, dict]:
        del rng
        loss, aux = losses.mined_triplet_loss(
            model(batch["x"]), batch["labels"], self.strategy, self.margin, batch["valid"]
        )
        return _with_l2(model, loss, aux, self.l2)


class MiningTask(_InBatchMining):
    """In-batch mining from group labels with P×K sampling; see the module docstring."""

    def __init__(self, features: np.ndarray, groups: np.ndarray, config: ml_collections.ConfigDict):
        self.features = check_features(features)
        self.groups = check_groups(groups, len(self.features))
        super().__init__(self.features.shape[1], config)
        mining = config.mining
        self.p, self.k = int(mining.groups_per_batch), int(mining.videos_per_group)
        self.background = int(mining.background)
        labels, counts = np.unique(self.groups[self.groups >= 0], return_counts=True)
        trainable = labels[counts >= 2]
        if trainable.size == 0:
            raise TrainingDataError("groups: no group has two videos, so there is no positive pair")
        self.members = [np.flatnonzero(self.groups == g) for g in trainable]
        self.background_rows = np.flatnonzero(
            ~np.isin(self.groups, trainable) & (self.groups != LEFT_OUT)
        )
        self.batch_rows = self.p * self.k + self.background

    def batch(self, step: int) -> Batch:
        rng = np.random.default_rng([self.seed, step])
        rows = np.zeros(self.batch_rows, np.int64)
        valid = np.zeros(self.batch_rows, bool)
        chosen = rng.permutation(len(self.members))[: self.p]
        for slot, g in enumerate(chosen):
            members = rng.permutation(self.members[g])[: self.k]
            rows[slot * self.k : slot * self.k + len(members)] = members
            valid[slot * self.k : slot * self.k + len(members)] = True
        extra = rng.permutation(self.background_rows)[: self.background]
        start = self.p * self.k
        rows[start : start + len(extra)] = extra
        valid[start : start + len(extra)] = True
        return {"x": self.features[rows], "labels": self.groups[rows], "valid": valid}


def _vector_example(example: Mapping[str, Any], rng: np.random.Generator) -> Batch:
    """A source example `{"features": [n, D] frames, "label"}` as one row of a mining batch."""
    del rng
    frames = np.asarray(example["features"], np.float32)
    return {
        "x": global_vectors([frames])[0],
        "labels": np.int64(example["label"]),
        "valid": np.bool_(True),
    }


class SourceMiningTask(_InBatchMining):
    """In-batch mining on grain batches of a labelled source; see the module docstring."""

    def __init__(self, source: Sequence[Mapping[str, Any]], config: ml_collections.ConfigDict):
        if not len(source):
            raise TrainingDataError("the training source has no examples")
        super().__init__(int(np.shape(source[0]["features"])[1]), config)
        self.batch_rows = int(config.batch_size)
        if self.batch_rows > len(source):
            raise TrainingDataError(
                f"batch_size {self.batch_rows} is larger than the source ({len(source)} examples)"
            )
        labels, counts = np.unique([int(source[i]["label"]) for i in range(len(source))],
                                   return_counts=True)  # fmt: skip
        if not np.any((labels >= 0) & (counts >= 2)):
            raise TrainingDataError("the source has no group of two videos (no positive pair)")
        self.steps_per_epoch = len(source) // self.batch_rows
        self.batches = EpochBatches(source, self.batch_rows, self.seed, _vector_example)

    def batch(self, step: int) -> Batch:
        return self.batches.batch(step)

    def process_batch(self, step: int) -> Batch:
        return self.batches.process_batch(step)


# ---------------------------------------------------------------------------------------------
# From a config to a trained network.


def build_task(
    config: ml_collections.ConfigDict,
    features: np.ndarray | None = None,
    triplets: np.ndarray | None = None,
    groups: np.ndarray | None = None,
) -> OfflineTripletTask | MiningTask | SourceMiningTask:
    """The task of `config.mode` ("offline" or "mining") on arrays, or on `config.data` files,
    or (`config.data.source = "tfds"`, mining only) on a TFDS source through grain.

    Offline mode injects up to `config.data.max_injected` triplets of `config.data.inject_*`
    (the original's CC_WEB_VIDEO injection) when those files are set.
    """
    data = config.data
    if data.get("source", "files") == "tfds" and features is None:
        if config.mode != "mining":
            raise ValueError("data.source 'tfds' trains by in-batch mining: set mode 'mining'")
        source = tfds_source(data.tfds_name, data.train_split, data.tfds_data_dir)
        return SourceMiningTask(source, config)
    if features is None:
        features = load_npy(data.features, "training features")
    features = check_features(features, f"training features {data.get('features', '')}".strip())
    if config.mode == "offline":
        if triplets is None:
            triplets = load_npy(data.triplets, "training triplets")
        triplets = check_triplets(triplets, len(features))
        if data.get("inject_features"):
            extra = check_features(load_npy(data.inject_features, "injected features"))
            extra_triplets = load_npy(data.inject_triplets, "injected triplets")
            extra_triplets = check_triplets(extra_triplets, len(extra), "injected triplets")
            features, triplets, count = inject_triplets(
                features, triplets, extra, extra_triplets, data.max_injected, config.seed
            )
            logging.info("injected %d evaluation triplets", count)
        return OfflineTripletTask(features, triplets, config)
    if config.mode == "mining":
        if groups is None:
            groups = load_npy(data.groups, "group labels")
        return MiningTask(features, groups, config)
    raise ValueError(f"config.mode must be 'offline' or 'mining', got {config.mode!r}")


def resolve_steps(config: ml_collections.ConfigDict, task: _DMLTask) -> int:
    """`config.num_steps`, or `epochs` passes over the triplets (or the source's examples) when
    num_steps <= 0."""
    if config.num_steps > 0:
        return int(config.num_steps)
    if not hasattr(task, "steps_per_epoch"):
        raise ValueError("P×K mining needs config.num_steps > 0")
    return int(config.epochs) * max(1, task.steps_per_epoch)


def train_dml(
    config: ml_collections.ConfigDict,
    workdir: str | os.PathLike,
    task: _DMLTask | None = None,
    evaluate: Any = None,
    save: bool = True,
) -> tuple[DML, list[dict[str, float]]]:
    """Trains (resuming from `workdir`) and writes the network beside the checkpoints (`save`;
    off where `evaluate` writes the best one itself)."""
    task = build_task(config) if task is None else task
    config = ml_collections.ConfigDict(config.to_dict())
    config.num_steps = resolve_steps(config, task)
    config.batch_size = task.batch_size if isinstance(task, OfflineTripletTask) else task.batch_rows
    model, history = loop.train(task, config, os.fspath(workdir), evaluate=evaluate)
    if save:
        save_dml(model, workdir, mode=config.mode, steps=config.num_steps)
    return model, history


def summarise_history(history: Sequence[Mapping[str, float]]) -> str:
    """One line with the last logged loss and active fraction."""
    rows = [r for r in history if "loss" in r]
    if not rows:
        return "no training steps were run"
    last = rows[-1]
    return (
        f"step {int(last['step'])}: loss {last['loss']:.4f}, active triplets "
        f"{100 * last.get('active_fraction', float('nan')):.1f}%"
    )


def run_training(config: ml_collections.ConfigDict, workdir: str) -> dict[str, Any]:
    """The `train` binary's DML entry: the task of `config.data`'s files, trained into `workdir`;
    returns the last logged metrics and where the network is."""
    _, history = train_dml(config, workdir, build_task(config))
    rows = [r for r in history if "loss" in r]
    return {**(rows[-1] if rows else {}), "network": os.path.abspath(workdir)}
