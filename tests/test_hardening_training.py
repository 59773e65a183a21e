"""Training on bad state: corrupt checkpoints, a kill mid-run, a workdir that is a file."""

import os
import signal
import socket
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax.training import checkpointing, loop
from ndvr_jax.training.metric_writers import read_metrics
from tests.test_training_loop import ToyTask, params_of, toy_config


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    model, _ = loop.train(ToyTask(), toy_config(), str(tmp_path_factory.mktemp("reference")))
    return params_of(model)


def truncate_largest_data_file(step_dir):
    data = max((step_dir / "state").rglob("d/*"), key=lambda p: p.stat().st_size)
    data.write_bytes(data.read_bytes()[:10])


def empty_metadata(step_dir):
    (step_dir / "state" / "_METADATA").write_text("")


@pytest.mark.parametrize("corrupt", [truncate_largest_data_file, empty_metadata])
def test_resume_falls_back_to_the_newest_checkpoint_that_loads(tmp_path, reference, corrupt):
    loop.train(ToyTask(), toy_config(num_steps=8), str(tmp_path))
    corrupt(tmp_path / "checkpoints" / "8")
    resumed, history = loop.train(ToyTask(), toy_config(), str(tmp_path))
    assert history[0]["step"] == 6  # from the checkpoint at step 4, not 8
    jax.tree.map(np.testing.assert_array_equal, reference, params_of(resumed))
    assert [p.name.split(".")[0] for p in (tmp_path / "checkpoints_rejected").iterdir()] == ["8"]
    assert [r["step"] for r in read_metrics(tmp_path)] == list(range(2, 13, 2))


def abstract(state):
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state)


def test_a_checkpoint_that_loads_with_non_finite_values_is_rejected(tmp_path, caplog):
    good = {"step": jnp.int32(4), "w": jnp.ones(3)}
    ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
    ckpt.save(4, good)
    ckpt.save(8, {"step": jnp.int32(8), "w": jnp.array([1.0, jnp.nan, 2.0])})
    ckpt.wait()
    state, _ = ckpt.restore_newest_good(abstract(good))
    assert int(state["step"]) == 4 and ckpt.all_steps() == [4]
    assert "skipping checkpoint 8: non-finite values in ['w']" in caplog.text
    ckpt.save(8, {"step": jnp.int32(8), "w": jnp.zeros(3)})  # the step can be saved again
    ckpt.close()


def test_no_usable_checkpoint_is_one_clear_error(tmp_path):
    ckpt = checkpointing.Checkpointer(tmp_path / "ckpt")
    ckpt.save(2, {"step": jnp.int32(2), "w": jnp.full(3, jnp.inf)})
    ckpt.wait()
    with pytest.raises(checkpointing.CheckpointError, match=r"none of the checkpoints \[2\]"):
        ckpt.restore_newest_good(abstract({"step": jnp.int32(0), "w": jnp.ones(3)}))
    ckpt.close()


def test_metrics_after_a_kill_continue_from_the_restored_step(tmp_path, reference):
    with pytest.raises(KeyboardInterrupt):
        loop.train(ToyTask(fail_at=7), toy_config(), str(tmp_path))  # logged 2, 4, 6; ckpt 4
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"step": 7, "lo')  # a line cut by the kill
    resumed, _ = loop.train(ToyTask(), toy_config(), str(tmp_path))
    assert [r["step"] for r in read_metrics(tmp_path)] == list(range(2, 13, 2))
    jax.tree.map(np.testing.assert_array_equal, reference, params_of(resumed))


def test_a_workdir_that_is_a_file_is_one_clear_error(tmp_path):
    (tmp_path / "model").write_text("not a folder")
    with pytest.raises(checkpointing.CheckpointError, match="is a file"):
        loop.train(ToyTask(), toy_config(), str(tmp_path / "model"))


def test_temporaries_of_a_killed_write_are_removed_by_the_next_run(tmp_path):
    writer = (
        "import sys, time\n"
        "from ndvr_jax.io.atomic import atomic_write\n"
        "with atomic_write(sys.argv[1]) as f:\n"
        "    f.write('half'); f.flush(); time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", writer, str(tmp_path / "metrics.jsonl")])
    deadline = time.time() + 60
    while not list(tmp_path.glob(".metrics.jsonl.*.tmp")) and time.time() < deadline:
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(list(tmp_path.glob(".metrics.jsonl.*.tmp"))) == 1
    (tmp_path / f".live.npy.{os.getpid()}@{socket.gethostname()}.abc.tmp").write_text("")
    old = tmp_path / ".legacy.npy.abc123.tmp"
    old.write_text("")
    os.utime(old, (0, 0))
    loop.train(ToyTask(), toy_config(num_steps=2), str(tmp_path))
    assert [p.name.split(".")[1] for p in tmp_path.glob(".*.tmp")] == ["live"]
