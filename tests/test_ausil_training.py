"""AuSiL training: triplets, batches, a few steps through the shared loop, resume, model round
trip, and the `train` binary's registry."""

import importlib.util
import json

import jax.numpy as jnp
import numpy as np
import pytest

from configs import ausil_demo
from ndvr_jax.ausil.training import (
    annotation_triplets,
    heldout_queries,
    load_model,
    load_pca,
    prepare_task,
    read_segment_features,
    train_ausil,
)
from ndvr_jax.io.store import FeatureStore
from ndvr_jax.jobs.train import run_task
from tests.test_triplets_cli import run_module

DIMS = 16


def make_data(root, rng):
    """6 database videos; queries q0..q3 copy (noisy) spans of db0..db3; q4 has no DA video."""
    store = FeatureStore(root / "features", "ausil")
    db = {f"db{i}": rng.standard_normal((int(rng.integers(8, 40)), DIMS)) for i in range(6)}
    for video_id, features in db.items():
        store.write(video_id, features, {"status": "ok"})
    annotation = {}
    for i in range(4):
        source = db[f"db{i}"]
        copy = source[2:14] + 0.1 * rng.standard_normal(source[2:14].shape)
        store.write(f"q{i}", copy, {"status": "ok"})
        annotation[f"q{i}"] = {"DA": [f"db{i}"], "ND": [f"db{5 - i}"]}
    store.write("q4", rng.standard_normal((5, DIMS)), {"status": "ok"})
    annotation["q4"] = {"ND": ["db0"]}
    (root / "annotation.json").write_text(json.dumps(annotation))
    (root / "database.txt").write_text("".join(f"{v}\t-\n" for v in db))
    return store, annotation, list(db)


def tiny_config(root):
    config = ausil_demo.get_config("runlocal")
    config.features_dir = str(root / "features")
    config.annotation_file = str(root / "annotation.json")
    config.database_list = str(root / "database.txt")
    config.video_list = ""
    config.pca_dims = 8
    config.max_segments = 24
    config.num_steps = 2
    config.batch_size = 4
    config.num_devices = 2
    config.holdout_every = 4
    return config


def test_triplets_and_heldout_queries():
    annotation = {"q0": {"DA": ["a", "b"]}, "q1": {"DA": ["c"]}, "q2": {"ND": ["a"]}}
    available = {"q0": 1, "q1": 1, "q2": 1, "a": 1, "b": 1, "d": 1}
    triplets = annotation_triplets(annotation, ["q0", "q1", "q2"], ["a", "b", "c", "d"], available)
    assert triplets == [("q0", "a", ("d",)), ("q0", "b", ("d",))]  # c has no features
    assert heldout_queries(["q3", "q1", "q0", "q2"], 2) == ["q1", "q3"]
    assert heldout_queries(["q0", "q1"], 0) == []


def test_batches_are_deterministic_and_packed(tmp_path):
    _, _, _ = make_data(tmp_path, np.random.default_rng(0))
    task = prepare_task(tiny_config(tmp_path), str(tmp_path / "work"))
    assert {a for a, _, _ in task.triplets} == {"q0", "q1", "q2"}  # q3 held out, q4 has no DA
    assert (tmp_path / "work/pca.npz").is_file()
    assert load_pca(tmp_path / "work").weights.shape == (DIMS, 8)
    batch, again = task.batch(3), task.batch(3)
    for key, value in batch.items():
        np.testing.assert_array_equal(value, again[key])
    assert batch["anchor"].shape == (4, task.length, DIMS) and task.length == 32
    assert batch["negative_len"].min() >= 10 and batch["positive_len"].max() <= 24


def test_train_resume_and_reload(tmp_path):
    make_data(tmp_path, np.random.default_rng(1))
    work = tmp_path / "work"
    config = tiny_config(tmp_path)
    _, history = train_ausil(config, str(work))
    assert [row["step"] for row in history] == [2]
    assert np.isfinite(history[-1]["loss"]) and "triplet_accuracy" in history[-1]

    config.num_steps = 4
    model, history = train_ausil(config, str(work))
    assert [row["step"] for row in history] == [4]  # resumed from step 2
    assert sorted(p.name for p in (work / "checkpoints").iterdir() if p.name.isdigit()) == [
        "2",
        "4",
    ]
    loaded = load_model(work)
    q = jnp.asarray(np.random.default_rng(2).standard_normal((2, 16, DIMS)), jnp.float32)
    n = jnp.array([16, 12])
    np.testing.assert_allclose(
        loaded(q, n, q[::-1], n[::-1]).similarity, model(q, n, q[::-1], n[::-1]).similarity
    )
    np.testing.assert_array_equal(loaded.pca_weights[...], load_pca(work).weights)


def test_read_segment_features_path_forms(tmp_path):
    store = FeatureStore(tmp_path, "ausil")
    features = np.arange(6, dtype=np.float32).reshape(3, 2)
    store.write("v", features, {})
    np.save(tmp_path / "v.npy", features)
    for path, video_id in [
        (tmp_path / "v/wlaf.npz", None),
        (tmp_path / "v", None),
        (tmp_path, "v"),
        (tmp_path / "v.npy", None),
    ]:
        np.testing.assert_array_equal(read_segment_features(path, video_id), features)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("musicnn") is None, reason="musicnn not installed")
def test_demo_run_end_to_end(tmp_path):
    from ndvr_jax.ausil.demo import ausil_demo_run

    results = ausil_demo_run(ausil_demo.get_config("runlocal"), tmp_path / "data", tmp_path / "w")
    assert set(results) == {"untrained", "trained", "shipped", "shipped + landmarks"}
    assert (tmp_path / "w/davr_shipped_landmarks.json").is_file()
    assert (tmp_path / "w/pr_davr.png").is_file() and (tmp_path / "w/augmented.npz").is_file()
    assert all(0.0 <= r["mAP"] <= 1.0 for r in results.values())


def test_train_binary_runs_the_ausil_task(tmp_path):
    make_data(tmp_path, np.random.default_rng(4))
    work = tmp_path / "work"
    overrides = [f"--config.{k}={v}" for k, v in tiny_config(tmp_path).items() if k in (
        "features_dir", "annotation_file", "database_list", "video_list", "pca_dims",
        "max_segments", "num_steps", "batch_size", "holdout_every")]  # fmt: skip
    run = run_module(
        "ndvr_jax.train", "--config=configs/ausil_demo.py:runlocal", f"--workdir={work}",
        "--config.num_devices=1", *overrides,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    assert "ausil_model.npz" in run.stdout and "triplet_accuracy" in run.stdout
    assert load_model(work) is not None and (work / "pca.npz").is_file()


def test_train_registry_names_its_tasks():
    config = ausil_demo.get_config("runlocal")
    config.task = "nonsense"
    with pytest.raises(ValueError, match=r"config.task must be one of \['ausil', 'dml'"):
        run_task(config, "unused")
