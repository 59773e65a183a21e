"""One training loop for every model in the toolkit.

A model plugs in through a `TrainTask`: it builds the NNX model, gives the global batch for any
step (deterministically, so a resumed run sees the same data), and computes the loss on the global
batch. A task that can read only this process's rows of a step's batch (per-host input: each
host loads its own examples) also defines `process_batch(step)`; the loop then calls that
instead of slicing the global batch. The loop does the rest: mesh, replicated parameters, a
jitted step with donated state and the batch sharded over devices, optax, Orbax checkpoints
with resume, a NaN guard, metrics to JSONL + TensorBoard, and a progress line with rate and ETA.

Config keys (see `default_train_config`): seed, num_steps, batch_size, num_devices, log_every,
checkpoint_every, keep_checkpoints, eval_every, optimizer.{name, learning_rate, weight_decay,
grad_clip_norm, warmup_steps, schedule}.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from absl import logging
from flax import nnx

from ndvr_jax import sharding
from ndvr_jax.io.atomic import remove_stale_temporaries
from ndvr_jax.progress import Progress
from ndvr_jax.training import checkpointing
from ndvr_jax.training.metric_writers import MetricWriter

Batch = Any
Metrics = dict[str, jax.Array]


class TrainTask(Protocol):
    """What a model provides to the training loop."""

    def create_model(self, rngs: nnx.Rngs) -> nnx.Module:
        """Builds the model with freshly initialised parameters."""

    def batch(self, step: int) -> Batch:
        """The global batch (pytree of numpy arrays, leading axis = batch) for `step`."""

    def loss(self, model: nnx.Module, batch: Batch, rng: jax.Array) -> tuple[jax.Array, Metrics]:
        """Scalar loss on the global batch and auxiliary scalar metrics."""


@jax.tree_util.register_dataclass
@dataclasses.dataclass
class TrainState:
    """Everything that changes during training; a pytree, checkpointed whole."""

    step: jax.Array
    params: nnx.State
    model_state: nnx.State  # non-trainable variables, e.g. batch statistics
    opt_state: optax.OptState
    rng: jax.Array


def default_train_config() -> ml_collections.ConfigDict:
    """Defaults of the loop's own keys; model configs extend this."""
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.num_steps = 1000
    config.batch_size = 64
    config.num_devices = 0  # 0: all devices
    config.log_every = 50
    config.checkpoint_every = 500
    config.keep_checkpoints = 3
    config.eval_every = 0  # 0: only at the end
    config.distributed = False
    config.optimizer = ml_collections.ConfigDict(
        dict(
            name="adamw",
            learning_rate=1e-3,
            weight_decay=0.0,
            grad_clip_norm=0.0,
            warmup_steps=0,
            schedule="constant",
        )
    )
    return config


def make_optimizer(opt: ml_collections.ConfigDict, num_steps: int) -> optax.GradientTransformation:
    """Optimiser from config: optional global-norm clipping, then Adam(W)/SGD on a schedule."""
    if opt.schedule == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, opt.learning_rate, max(opt.warmup_steps, 1), max(num_steps, 2)
        )
    elif opt.schedule == "constant":
        schedule = (
            optax.join_schedules(
                [
                    optax.linear_schedule(0.0, opt.learning_rate, opt.warmup_steps),
                    optax.constant_schedule(opt.learning_rate),
                ],
                [opt.warmup_steps],
            )
            if opt.warmup_steps
            else opt.learning_rate
        )
    else:
        raise ValueError(f"unknown schedule {opt.schedule!r}")
    optimisers = {
        "adamw": lambda: optax.adamw(schedule, weight_decay=opt.weight_decay),
        "adam": lambda: optax.adam(schedule),
        "sgd": lambda: optax.sgd(schedule, momentum=0.9),
    }
    if opt.name not in optimisers:
        raise ValueError(f"unknown optimizer {opt.name!r}; choose from {sorted(optimisers)}")
    chain = [optax.clip_by_global_norm(opt.grad_clip_norm)] if opt.grad_clip_norm > 0 else []
    return optax.chain(*chain, optimisers[opt.name]())


def _make_train_step(
    graphdef: nnx.GraphDef, task: TrainTask, tx: optax.GradientTransformation
) -> Callable[[TrainState, Batch], tuple[TrainState, Metrics]]:
    """The pure update step; a non-finite loss or gradient leaves the state unchanged."""

    def train_step(state: TrainState, batch: Batch) -> tuple[TrainState, Metrics]:
        rng = jax.random.fold_in(state.rng, state.step)

        def loss_fn(params, model_state):
            model = nnx.merge(graphdef, params, model_state, copy=True)
            loss, aux = task.loss(model, batch, rng)
            return loss, (aux, nnx.state(model, nnx.Not(nnx.Param)))

        (loss, (aux, model_state)), grads = jax.value_and_grad(loss_fn, has_aux=True)(
            state.params, state.model_state
        )
        grad_norm = optax.global_norm(grads)
        finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        new = TrainState(
            step=state.step + 1,
            params=optax.apply_updates(state.params, updates),
            model_state=model_state,
            opt_state=opt_state,
            rng=state.rng,
        )
        keep_old = lambda new_leaf, old_leaf: jnp.where(finite, new_leaf, old_leaf)
        new = dataclasses.replace(jax.tree.map(keep_old, new, state), step=state.step + 1)
        metrics = {"loss": loss, "grad_norm": grad_norm, "nonfinite": 1.0 - finite, **aux}
        return new, metrics

    return train_step


def _init_state(task: TrainTask, config, tx) -> tuple[nnx.GraphDef, TrainState]:
    """Builds the model and the initial train state (on the host)."""
    model = task.create_model(nnx.Rngs(config.seed))
    graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
    state = TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        model_state=model_state,
        opt_state=tx.init(params),
        rng=jax.random.key_data(jax.random.key(config.seed + 1)),
    )
    return graphdef, state


def _process_rows(batch: Batch) -> Batch:
    """This process's contiguous rows of a global batch."""
    n, i = jax.process_count(), jax.process_index()

    def rows(x):
        x = np.asarray(x)
        per = x.shape[0] // n
        return x[i * per : (i + 1) * per]

    return jax.tree.map(rows, batch)


def train(
    task: TrainTask,
    config: ml_collections.ConfigDict,
    workdir: str,
    evaluate: Callable[[nnx.Module, int], Mapping[str, float]] | None = None,
) -> tuple[nnx.Module, list[dict[str, float]]]:
    """Trains (resuming from `workdir` if it holds checkpoints); returns the model and log rows."""
    sharding.maybe_initialize_distributed(config.get("distributed", False))
    mesh = sharding.make_mesh(config.num_devices)
    sharding.check_batch_size(config.batch_size, mesh)
    tx = make_optimizer(config.optimizer, config.num_steps)
    graphdef, state = _init_state(task, config, tx)
    state = sharding.replicate(state, mesh)

    ckpt = checkpointing.Checkpointer(f"{workdir}/checkpoints", config.keep_checkpoints)
    remove_stale_temporaries(workdir)
    abstract = jax.tree.map(
        lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), state
    )
    restored = ckpt.restore_newest_good(abstract)
    if restored is not None:
        state = restored[0]
        logging.info("resumed from step %d", int(state.step))

    step_fn = jax.jit(
        _make_train_step(graphdef, task, tx),
        in_shardings=(sharding.replicated(mesh), sharding.batch_sharded(mesh)),
        out_shardings=(sharding.replicated(mesh), sharding.replicated(mesh)),
        donate_argnums=0,
    )
    start = int(state.step)
    writer = MetricWriter(workdir, resume_step=start)
    progress = Progress(config.num_steps, "train", "steps", start=start)
    history: list[dict[str, float]] = []
    pending: list[Metrics] = []

    def model_now() -> nnx.Module:
        return nnx.merge(graphdef, state.params, state.model_state)

    process_batch = getattr(task, "process_batch", None) or (
        lambda step: _process_rows(task.batch(step))
    )
    try:
        for step in range(start, config.num_steps):
            batch = sharding.host_local_batch_to_global(process_batch(step), mesh)
            state, metrics = step_fn(state, batch)
            pending.append(metrics)
            done = step + 1
            is_last = done == config.num_steps
            if done % config.log_every == 0 or is_last:
                row = _summarise(jax.device_get(pending))
                pending.clear()
                if row["nonfinite"] > 0:
                    raise FloatingPointError(
                        f"non-finite loss or gradient before step {done}; the update was skipped "
                        f"and the last checkpoint is intact (lower the learning rate?)"
                    )
                history.append({"step": done, **row})
                writer.write_scalars(done, row)
                progress.update(done - progress.done, extra=f"loss {row['loss']:.4f}")
            if done % config.checkpoint_every == 0 or is_last:
                ckpt.save(done, state)
            if evaluate and ((config.eval_every and done % config.eval_every == 0) or is_last):
                scores = dict(evaluate(model_now(), done))
                writer.write_scalars(done, scores)
                history.append({"step": done, **scores})
    finally:
        ckpt.close()
        writer.close()
    return model_now(), history


def _summarise(metrics: list[Metrics]) -> dict[str, float]:
    """Mean of each metric over the steps since the last log; non-finite counts are summed."""
    keys = metrics[0].keys()
    row = {k: float(np.mean([m[k] for m in metrics])) for k in keys}
    row["nonfinite"] = float(np.sum([m["nonfinite"] for m in metrics]))
    return row
