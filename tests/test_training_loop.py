"""The shared training loop on a toy regression task."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from ndvr_jax.training import loop
from ndvr_jax.training.metric_writers import read_metrics


class ToyTask:
    """Linear regression y = x·w* with a tiny MLP; optional failure at one step."""

    def __init__(self, fail_at: int | None = None, nan_at: int | None = None):
        self.fail_at = fail_at
        self.nan_at = nan_at
        rng = np.random.default_rng(0)
        self.w = rng.normal(size=(4, 1)).astype(np.float32)

    def create_model(self, rngs: nnx.Rngs) -> nnx.Module:
        return nnx.Sequential(
            nnx.Linear(4, 16, use_bias=False, rngs=rngs),
            nnx.BatchNorm(16, rngs=rngs),
            nnx.Linear(16, 1, rngs=rngs),
        )

    def batch(self, step: int):
        if step == self.fail_at:
            raise KeyboardInterrupt("simulated interruption")
        x = np.random.default_rng(step).normal(size=(16, 4)).astype(np.float32)
        y = x @ self.w
        if step == self.nan_at:
            y[0] = np.nan
        return {"x": x, "y": y}

    def loss(self, model, batch, rng):
        pred = model(batch["x"])
        loss = jnp.mean((pred - batch["y"]) ** 2)
        return loss, {"pred_mean": jnp.mean(pred)}


def toy_config(num_devices: int = 1, num_steps: int = 12):
    config = loop.default_train_config()
    config.num_steps = num_steps
    config.batch_size = 16
    config.num_devices = num_devices
    config.log_every = 2
    config.checkpoint_every = 4
    config.optimizer.learning_rate = 0.05
    config.optimizer.grad_clip_norm = 1.0
    return config


def params_of(model):
    return jax.tree.map(np.asarray, nnx.state(model))


def test_loss_decreases_and_metrics_are_logged(tmp_path):
    _, history = loop.train(ToyTask(), toy_config(num_steps=30), str(tmp_path))
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == list(range(2, 31, 2))
    assert {"loss", "grad_norm", "pred_mean"} <= rows[0].keys()
    assert list((tmp_path / "tensorboard").iterdir())


def test_resume_after_interruption_matches_uninterrupted_run(tmp_path):
    reference, _ = loop.train(ToyTask(), toy_config(), str(tmp_path / "a"))
    with pytest.raises(KeyboardInterrupt):
        loop.train(ToyTask(fail_at=9), toy_config(), str(tmp_path / "b"))
    resumed, history = loop.train(ToyTask(), toy_config(), str(tmp_path / "b"))
    assert history[0]["step"] == 10  # restarted from the checkpoint at step 8
    jax.tree.map(np.testing.assert_array_equal, params_of(reference), params_of(resumed))


def test_one_and_eight_devices_agree(tmp_path):
    assert jax.device_count() == 8
    one, _ = loop.train(ToyTask(), toy_config(1), str(tmp_path / "one"))
    eight, _ = loop.train(ToyTask(), toy_config(8), str(tmp_path / "eight"))
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6),
        params_of(one),
        params_of(eight),
    )


def test_nan_guard_stops_and_keeps_last_good_checkpoint(tmp_path):
    with pytest.raises(FloatingPointError, match="non-finite"):
        loop.train(ToyTask(nan_at=5), toy_config(), str(tmp_path))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit()) == ["4"]


def test_batch_must_divide_over_devices(tmp_path):
    config = toy_config(8)
    config.batch_size = 12
    with pytest.raises(ValueError, match="not divisible"):
        loop.train(ToyTask(), config, str(tmp_path))
