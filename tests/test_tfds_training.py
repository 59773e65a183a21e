"""DML and AuSiL training from TFDS sources through grain: the shared epoch batches cover every
example once per epoch (split over processes), and each task's batches are the source's
examples; the train binary's tasks run from the TFDS configs."""

import json
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ndvr_jax.config_files import load_config_file
from ndvr_jax.data import tfds_builders
from ndvr_jax.data.grain_source import EpochBatches, example_id
from ndvr_jax.io.store import FeatureStore
from ndvr_jax.jobs.train import run_task
from ndvr_jax.search import global_vectors
from tests.test_ausil_training import make_data, tiny_config


def test_epoch_batches_cover_every_example_once_per_epoch_and_process():
    source = [{"value": np.int64(i)} for i in range(12)]
    keep = lambda example, rng: example  # noqa: E731
    single = EpochBatches(source, 4, seed=5, transform=keep, processes=1, process_index=0)
    shares = [EpochBatches(source, 4, 5, keep, processes=2, process_index=i) for i in range(2)]
    orders = []
    for epoch in range(2):
        steps = range(3 * epoch, 3 * epoch + 3)
        order = np.concatenate([single.batch(s)["value"] for s in steps])
        assert sorted(order) == list(range(12))  # every example once this epoch
        seen = []
        for step in steps:
            halves = [share.process_batch(step)["value"] for share in shares]
            np.testing.assert_array_equal(np.concatenate(halves), single.batch(step)["value"])
            seen += [v for half in halves for v in half]
        assert sorted(seen) == list(range(12))  # the processes' shares: disjoint, complete
        orders.append(order)
    assert not np.array_equal(orders[0], orders[1])  # a new order each epoch
    with pytest.raises(ValueError, match="divide"):
        EpochBatches(source, 3, 0, keep, processes=2, process_index=0)


def copy_benchmark(root, rng, queries=8, database=8, dims=12):
    """Queries q<i> are noisy copies (ND) of database videos d<i>; d<i> for i >= queries are
    distractors. Frame features in the demo layout's `features/`."""
    store = FeatureStore(root / "features")
    sources = {
        f"d{i}": rng.standard_normal((int(rng.integers(3, 9)), dims)) for i in range(database)
    }
    annotation = {}
    for i in range(queries):
        store.write(
            f"q{i}", sources[f"d{i}"] + 0.2 * rng.standard_normal(sources[f"d{i}"].shape), {}
        )
        annotation[f"q{i}"] = {"ND": [f"d{i}"]}
    for video, features in sources.items():
        store.write(video, features, {})
    lists = {"queries.txt": [f"q{i}" for i in range(queries)], "database.txt": list(sources)}
    for name, ids in lists.items():
        (root / name).write_text("".join(f"{v}\tvideos/{v}.mp4\n" for v in ids))
    (root / "annotation.json").write_text(json.dumps(annotation))


def test_dml_mines_batches_of_the_tfds_source(tmp_path):
    copy_benchmark(tmp_path / "bench", np.random.default_rng(0))
    tfds_builders.build("ndvr_demo_features/fold0of2", tmp_path / "bench", str(tmp_path / "tfds"))
    config = load_config_file("configs/dml_demo_tfds.py", "runlocal")
    config.data.tfds_data_dir = str(tmp_path / "tfds")
    config.update(num_steps=30, log_every=1, checkpoint_every=30)
    config.optimizer.learning_rate = 3e-3
    config.mining.strategy = "batch_all"  # a smooth loss: every valid triplet of the batch
    from ndvr_jax.dml import training

    task = training.build_task(config)
    source = tfds.data_source("ndvr_demo_features/fold0of2", split="train",
                              data_dir=str(tmp_path / "tfds"))  # fmt: skip
    assert isinstance(task, training.SourceMiningTask) and task.steps_per_epoch == 2
    want = {example_id(e): (global_vectors([e["features"]])[0], int(e["label"])) for e in source}
    # fold 0's queries (q0, q2, ...) give no labels: q1-d1, q3-d3, ... are the groups
    assert sorted(v for v, (_, label) in want.items() if label >= 0) == sorted(
        [f"{p}{i}" for i in (1, 3, 5, 7) for p in "qd"]
    )
    rows = [task.batch(s) for s in range(2)]  # one epoch
    x = np.concatenate([r["x"] for r in rows])
    labels = np.concatenate([r["labels"] for r in rows])
    matched = [min(want, key=lambda v: np.abs(want[v][0] - row).max()) for row in x]
    assert sorted(matched) == sorted(want)  # every source example once, as its global vector
    for video, row, label in zip(matched, x, labels, strict=True):
        np.testing.assert_allclose(row, want[video][0], atol=1e-6)
        assert label == want[video][1]
    config.batch_size = 16  # every video each step: the loss of one set, falling
    summary = run_task(config, str(tmp_path / "run"))
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    losses = [row["loss"] for row in history if "loss" in row]
    assert len(losses) == 30 and np.mean(losses[-5:]) < 0.5 * np.mean(losses[:3])
    assert (tmp_path / "run" / "dml_params.npz").is_file() and np.isfinite(summary["loss"])


def audio_benchmark(root):
    """test_ausil_training's segment features as a demo-layout benchmark (audio_features/)."""
    store, annotation, db_ids = make_data(root, np.random.default_rng(0))
    queries = sorted(annotation)
    (root / "queries.txt").write_text("".join(f"{q}\tvideos/{q}.mp4\n" for q in queries))
    (root / "database.txt").write_text("".join(f"{v}\tvideos/{v}.mp4\n" for v in db_ids))
    shutil.copytree(root / "features", root / "audio_features")
    return store


def test_ausil_trains_on_the_tfds_source_through_grain(tmp_path):
    from ndvr_jax.ausil.training import AusilTask, GrainAusilTask, prepare_task

    store = audio_benchmark(tmp_path / "bench")
    tfds_builders.build("ndvr_demo_features/audio", tmp_path / "bench", str(tmp_path / "tfds"))
    config = tiny_config(tmp_path / "bench")
    config.database_list = ""  # the negatives: every source video outside the annotation
    from_store = prepare_task(config, str(tmp_path / "store_run"))
    config.data.update(source="tfds", tfds_name="ndvr_demo_features/audio",
                       tfds_data_dir=str(tmp_path / "tfds"))  # fmt: skip
    task = prepare_task(config, str(tmp_path / "tfds_run"))
    assert isinstance(task, GrainAusilTask) and type(from_store) is AusilTask
    # the same triplets, features and PCA from the TFDS source as from the store
    assert task.triplets == from_store.triplets and len(task.triplets) == 3
    assert sorted(task.features) == sorted(from_store.features)
    for video in task.features:
        np.testing.assert_array_equal(task.features[video], store.load(video))
    np.testing.assert_allclose(task.pca.weights, from_store.pca.weights, rtol=1e-5, atol=1e-6)
    # grain batches: every triplet's anchor once an epoch, read from the source
    config.batch_size = 3
    task = GrainAusilTask(config, task.features, task.triplets, task.pca)
    batch = task.batch(0)
    anchors = []
    for packed, n in zip(batch["anchor"], batch["anchor_len"], strict=True):
        anchor = next(a for a, _, _ in task.triplets if len(store.load(a)) == n
                      and np.allclose(packed[:n], store.load(a), atol=1e-6))  # fmt: skip
        anchors.append(anchor)
    assert sorted(anchors) == sorted(a for a, _, _ in task.triplets)
    config.update(num_steps=2, batch_size=4)
    summary = run_task(config, str(tmp_path / "train"))
    assert np.isfinite(summary["loss"]) and (tmp_path / "train" / "ausil_model.npz").is_file()
