"""DML training tasks: batches, injection, losses against numpy, 1 vs 8 devices, resume, saving."""

import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

from ndvr_jax.dml import training as dml_training
from ndvr_jax.dml.demo import dml_demo_run, fold_split
from ndvr_jax.dml.embed import embed_early, embed_late, load_dml
from ndvr_jax.io.store import FeatureStore
from tests.test_triplets_cli import clustered_videos

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def load_config(name: str, arg: str = "runlocal"):
    spec = importlib.util.spec_from_file_location(f"config_{name}", CONFIGS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(arg)


def tiny_config(mode: str = "offline", num_devices: int = 1, num_steps: int = 4):
    config = load_config("dml_vcdb")
    config.mode = mode
    config.num_devices = num_devices
    config.num_steps = num_steps
    config.batch_size = 8
    config.log_every = 1
    config.checkpoint_every = 2
    config.optimizer.learning_rate = 1e-2
    config.model.hidden_sizes = (16,)
    config.model.embedding_dim = 8
    config.mining.update(
        strategy="batch_hard", groups_per_batch=2, videos_per_group=3, background=2
    )
    return config


def features_and_groups(n: int = 24, dim: int = 12, seed: int = 0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n // 4), 4)
    groups[-3:] = -1
    features = rng.normal(size=(n, dim)).astype(np.float32) + groups[:, None] * 0.5
    return features, groups


def params_of(model):
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]


def test_offline_batches_cover_every_triplet_once_per_epoch():
    features = np.repeat(np.arange(24, dtype=np.float32)[:, None], 12, axis=1)  # row i is all i
    triplets = np.random.default_rng(1).integers(0, len(features), size=(19, 3))
    task = dml_training.OfflineTripletTask(features, triplets, tiny_config())
    assert task.steps_per_epoch == 3
    for epoch in range(2):
        seen = []
        for step in range(epoch * 3, epoch * 3 + 3):
            batch = task.batch(step)
            assert batch["triplets"].shape == (8, 3) and batch["valid"].shape == (8,)
            videos, real = batch["x"][:, 0], batch["triplets"].max() + 1
            assert batch["x"].shape[1] == 12 and np.all(batch["x"][real:] == 0)  # padding
            assert len(set(videos[:real].tolist())) == real  # each video once
            seen += videos[batch["triplets"]][batch["valid"]].astype(int).tolist()
        assert sorted(seen) == sorted(triplets.tolist())
    again = dml_training.OfflineTripletTask(features, triplets, tiny_config())
    eight = dml_training.OfflineTripletTask(features, triplets, tiny_config(num_devices=8))
    for step in range(6):  # rows padded to a multiple of the devices, at most 3 a triplet
        rows, videos = len(eight.batch(step)["x"]), eight.batch(step)["triplets"].max() + 1
        assert rows % 8 == 0 and videos <= rows <= 24
    np.testing.assert_array_equal(again.batch(4)["x"], task.batch(4)["x"])
    np.testing.assert_array_equal(again.batch(4)["triplets"], task.batch(4)["triplets"])
    assert not np.array_equal(task.batch(0)["x"], task.batch(3)["x"])


def test_injection_appends_features_and_shifts_rows():
    features, extra = np.zeros((5, 3)), np.ones((4, 3))
    triplets, extra_triplets = np.zeros((2, 3), int), np.arange(12).reshape(4, 3) % 4
    f, t, count = dml_training.inject_triplets(features, triplets, extra, extra_triplets, 3)
    assert f.shape == (9, 3) and count == 3 and len(t) == 5
    assert t[2:].min() >= 5 and t[2:].max() < 9
    assert {tuple(r) for r in (t[2:] - 5).tolist()} <= {tuple(r) for r in extra_triplets.tolist()}
    assert dml_training.inject_triplets(features, triplets, extra, extra_triplets, 10**6)[2] == 4
    with pytest.raises(dml_training.TrainingDataError, match="2-d but the training"):
        dml_training.inject_triplets(features, triplets, np.ones((4, 2)), extra_triplets, 3)


def test_mining_batches_are_p_by_k_plus_background():
    features, groups = features_and_groups()
    groups[0] = -2  # left out: never sampled
    groups[4:8] = [9, 9, 10, 11]  # group 9 has two videos; 10 and 11 are singletons
    task = dml_training.MiningTask(features, groups, tiny_config("mining"))
    assert task.batch_rows == 2 * 3 + 2
    for step in range(20):
        batch = task.batch(step)
        labels, valid = batch["labels"], batch["valid"]
        assert labels.shape == (8,) and batch["x"].shape == (8, 12)
        assert -2 not in labels[valid]
        for slot in range(2):
            members = labels[slot * 3 : slot * 3 + 3][valid[slot * 3 : slot * 3 + 3]]
            assert len(members) >= 2 and len(set(members.tolist())) == 1
        rows = {tuple(x) for x in batch["x"][valid].tolist()}
        assert len(rows) == valid.sum()  # no video twice in a batch
        assert not set(labels[6:][valid[6:]].tolist()) & set(labels[:6][valid[:6]].tolist())


def test_bad_training_inputs_give_clear_errors(tmp_path):
    features, groups = features_and_groups()
    bad = features.copy()
    bad[[3, 7]] = np.nan
    with pytest.raises(
        dml_training.TrainingDataError, match=r"2 rows contain NaN or inf \(rows 3, 7\)"
    ):
        dml_training.check_features(bad)
    with pytest.raises(dml_training.TrainingDataError, match="expected a non-empty"):
        dml_training.check_features(features[0])
    with pytest.raises(dml_training.TrainingDataError, match=r"rows must be in \[0, 24\)"):
        dml_training.check_triplets(np.array([[0, 1, 24]]), 24)
    with pytest.raises(dml_training.TrainingDataError, match="expected"):
        dml_training.check_triplets(np.zeros((4, 2), int), 24)
    with pytest.raises(dml_training.TrainingDataError, match="no triplets"):
        dml_training.check_triplets(np.zeros((0, 3), int), 24)
    with pytest.raises(dml_training.TrainingDataError, match="one per feature row"):
        dml_training.check_groups(groups[:-1], 24)
    with pytest.raises(dml_training.TrainingDataError, match="no group has two videos"):
        dml_training.MiningTask(features, np.arange(24), tiny_config("mining"))
    config = tiny_config()
    config.data.features = str(tmp_path / "missing.npy")
    with pytest.raises(dml_training.TrainingDataError, match="training features file .* not exist"):
        dml_training.build_task(config)
    np.save(tmp_path / "f.npy", bad)
    config.data.features = str(tmp_path / "f.npy")
    with pytest.raises(dml_training.TrainingDataError, match="NaN"):
        dml_training.build_task(config)


def test_offline_loss_with_l2_matches_numpy():
    features, _ = features_and_groups()
    triplets = np.array([[0, 1, 8], [4, 5, 0], [9, 10, 20]])
    config = tiny_config()
    config.loss.l2_regularization = 1e-3
    config.loss.margin = 0.7
    task = dml_training.OfflineTripletTask(features, triplets, config)
    model = task.create_model(nnx.Rngs(0))
    batch = task.batch(0)
    loss, aux = task.loss(model, batch, None)

    def forward(x):
        for layer in model.layers:
            x = np.tanh(x @ np.asarray(layer.kernel[...]) + np.asarray(layer.bias[...]))
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    assert len(batch["x"]) == 8  # videos 0, 1, 4, 5, 8, 9, 10, 20, each embedded once
    a, p, n = (
        forward(batch["x"][batch["triplets"][batch["valid"], i]].astype(np.float64))
        for i in range(3)
    )
    losses = np.maximum(0, ((a - p) ** 2).sum(1) - ((a - n) ** 2).sum(1) + 0.7)
    l2 = 0.5 * 1e-3 * sum((w**2).sum() for w in params_of(model))
    assert float(loss) == pytest.approx(losses.mean() + l2, rel=1e-5)
    assert float(aux["active_fraction"]) == pytest.approx((losses > 0).mean())
    assert float(aux["l2_penalty"]) == pytest.approx(l2, rel=1e-5)


@pytest.mark.parametrize("mode", ["offline", "mining"])
def test_one_and_eight_devices_give_the_same_training(tmp_path, mode):
    assert jax.device_count() == 8
    features, groups = features_and_groups(n=40)
    triplets = np.random.default_rng(0).integers(0, 40, size=(30, 3))
    runs = []
    for devices in (1, 8):
        config = tiny_config(mode, devices, num_steps=3)
        config.mining.update(groups_per_batch=2, videos_per_group=3, background=2)
        task = dml_training.build_task(config, features, triplets, groups)
        runs.append(dml_training.train_dml(config, tmp_path / str(devices), task))
    (one, h1), (eight, h8) = runs
    for key in ("loss", "active_fraction", "num_triplets"):
        np.testing.assert_allclose([r[key] for r in h1], [r[key] for r in h8], rtol=1e-5)
    for a, b in zip(params_of(one), params_of(eight), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_resume_continues_where_it_stopped_and_saves_the_network(tmp_path):
    features, groups = features_and_groups()
    triplets = np.random.default_rng(0).integers(0, 24, size=(20, 3))
    task = lambda config: dml_training.build_task(config, features, triplets, groups)
    full, _ = dml_training.train_dml(
        tiny_config(num_steps=6), tmp_path / "full", task(tiny_config())
    )
    dml_training.train_dml(tiny_config(num_steps=4), tmp_path / "part", task(tiny_config()))
    resumed, history = dml_training.train_dml(
        tiny_config(num_steps=6), tmp_path / "part", task(tiny_config())
    )
    assert [int(r["step"]) for r in history] == [5, 6]  # continued from the checkpoint at 4
    for a, b in zip(params_of(full), params_of(resumed), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    loaded, meta = load_dml(tmp_path / "part")
    assert meta["mode"] == "offline" and meta["hidden_sizes"] == [16] and meta["steps"] == 6
    for a, b in zip(params_of(resumed), params_of(loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    rows = [
        json.loads(line) for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    ]
    assert "active_fraction" in rows[-1]
    with pytest.raises(FileNotFoundError, match="ndvr_jax.train --config"):
        load_dml(tmp_path / "nothing")


def test_bfloat16_training_follows_float32(tmp_path):
    features, groups = features_and_groups(n=40)
    triplets = np.random.default_rng(2).integers(0, 40, size=(48, 3))
    losses, params = {}, {}
    for dtype in ("float32", "bfloat16"):
        config = tiny_config(num_steps=12)
        config.model.compute_dtype = dtype
        task = dml_training.build_task(config, features, triplets, groups)
        model, history = dml_training.train_dml(config, tmp_path / dtype, task)
        losses[dtype] = np.array([r["loss"] for r in history if "loss" in r])
        params[dtype] = params_of(model)
    assert all(p.dtype == np.float32 for p in params["bfloat16"])
    assert losses["float32"][-3:].mean() < 0.8 * losses["float32"][:3].mean()  # it learns
    np.testing.assert_allclose(losses["bfloat16"], losses["float32"], rtol=0.03, atol=0.01)
    for a, b in zip(params["bfloat16"], params["float32"], strict=True):
        # Adam moves a weight by up to lr (1e-2) a step whatever the gradient's size, so a
        # near-zero gradient of the other sign costs up to 2·lr; allow that on a few steps.
        np.testing.assert_allclose(a, b, atol=0.03)


def test_early_and_late_embeddings_match_the_model():
    features, _ = features_and_groups()
    model = dml_training.create_dml(12, tiny_config().model, nnx.Rngs(0))
    np.testing.assert_allclose(
        embed_early(model, features, batch_size=8), model(features), atol=1e-6
    )
    rng = np.random.default_rng(3)
    videos = [rng.normal(size=(n, 12)).astype(np.float32) for n in (1, 5, 9, 3)]
    got = embed_late(model, videos)
    for video, row in zip(videos, got, strict=True):
        x = video - video.mean(1, keepdims=True)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        mean = np.asarray(model(x)).mean(0)
        np.testing.assert_allclose(row, mean / np.linalg.norm(mean), atol=1e-5)


def test_fold_split():
    folds = fold_split(10, 3, seed=0)
    assert sorted(np.bincount(folds).tolist()) == [3, 3, 4]
    with pytest.raises(ValueError):
        fold_split(3, 4, seed=0)


def test_dml_demo_run_on_a_tiny_benchmark(tmp_path):
    groups = {f"q{i}": i % 3 for i in range(6)} | {f"d{i}": i for i in range(3)}
    groups |= {f"x{i}": -1 for i in range(4)}
    store = FeatureStore(tmp_path / "features")
    for video_id, frames in clustered_videos(groups, seed=4, dim=12).items():
        store.write(video_id, frames, {})
    data = tmp_path / "data"
    data.mkdir()
    queries = [v for v in groups if v[0] == "q"]
    database = [v for v in groups if v[0] != "q"]
    (data / "queries.txt").write_text("".join(f"{v}\tv.mp4\n" for v in queries))
    (data / "database.txt").write_text("".join(f"{v}\tv.mp4\n" for v in database))
    annotation = {q: {"ND": [f"d{groups[q]}"]} for q in queries}
    (data / "annotation.json").write_text(json.dumps(annotation))
    config = load_config("dml_demo")
    config.num_steps = 3
    config.demo.folds = 2
    config.demo.protocols = ("DSVR",)
    results = dml_demo_run(config, tmp_path / "features", data, tmp_path / "work")
    assert set(results) == {"baseline", "DML early", "DML late"}
    for system in results.values():
        assert 0.0 < system["DSVR"]["mAP"] <= 1.0 and system["DSVR"]["num_queries"] == 6
    assert results["baseline"]["DSVR"]["mAP"] == pytest.approx(1.0)  # clear clusters
    for name in ("results.md", "pr_curves.png", "training.json", "similarities_dml_late.json"):
        assert (tmp_path / "work" / name).is_file()
    assert len(json.loads((tmp_path / "work" / "training.json").read_text())["folds"]) == 2
