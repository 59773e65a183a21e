"""The hashing loss against numpy, grain batches, model save/load, and a tiny end-to-end run."""

import itertools

import grain
import jax
import ml_collections
import numpy as np
import pytest
from flax import nnx

from ndvr_jax.config_files import load_config_file
from ndvr_jax.data.annotations import copy_group_labels
from ndvr_jax.hashing import codes, data, training
from ndvr_jax.hashing.losses import hashing_loss
from ndvr_jax.hashing.model import HashingNet, HashOutput
from ndvr_jax.hashing.sources import load_video_sets
from ndvr_jax.io.store import FeatureStore


def numpy_batch_all(x, labels, margin):
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    active = []
    for a, p, n in itertools.product(range(len(x)), repeat=3):
        positive = a != p and labels[a] == labels[p] and labels[a] >= 0
        negative = n != a and not (labels[n] == labels[a] and labels[a] >= 0)
        if positive and negative and d[a, p] - d[a, n] + margin > 0:
            active.append(d[a, p] - d[a, n] + margin)
    return np.mean(active) if active else 0.0


def test_hashing_loss_matches_numpy():
    rng = np.random.default_rng(0)
    bits = rng.uniform(0.01, 0.99, (10, 16)).astype(np.float32)
    logits = rng.normal(size=(10, 4)).astype(np.float32)
    labels = np.array([0, 0, 1, 1, 2, 2, 3, -1, 0, 1], np.int32)
    weights = dict(alpha=0.7, beta=1.3, quantization=0.2)
    total, aux = hashing_loss(
        HashOutput(bits, logits, None), labels, margin=2.0, mining="batch_all", **weights
    )
    shifted = logits - logits.max(1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))
    has = labels >= 0
    ce = -log_p[has, labels[has]].mean()
    triplet = numpy_batch_all(bits.astype(np.float64), labels, 2.0)
    quant = (4 * bits * (1 - bits)).mean()
    np.testing.assert_allclose(aux["cross_entropy"], ce, rtol=1e-5)
    np.testing.assert_allclose(aux["triplet"], triplet, rtol=1e-4)
    np.testing.assert_allclose(aux["quantization"], quant, rtol=1e-5)
    np.testing.assert_allclose(total, 0.7 * ce + 1.3 * triplet + 0.2 * quant, rtol=1e-4)


def _source(n=12, d=4):
    rng = np.random.default_rng(1)
    return [
        {"id": f"v{i}", "features": rng.normal(size=(i % 5 + 1, d)), "label": i % 3}
        for i in range(n)
    ]


def test_clip_pads_and_subsamples():
    features = np.arange(10, dtype=np.float32)[:, None]
    frames, mask = data.clip(features, 4)
    np.testing.assert_array_equal(frames[:, 0], [0, 3, 6, 9])
    assert mask.all()
    frames, mask = data.clip(features[:3], 5)
    np.testing.assert_array_equal(frames[:, 0], [0, 1, 2, 0, 0])
    np.testing.assert_array_equal(mask, [1, 1, 1, 0, 0])


def test_training_batches_cover_every_example_once_per_epoch():
    source = _source()
    ds = data.training_dataset(source, batch_size=4, max_frames=5, seed=3)
    epochs = []
    for epoch in range(2):
        batches = [ds[epoch * 3 + s] for s in range(3)]
        firsts = np.concatenate([b["frames"][:, 0, 0] for b in batches])
        assert batches[0]["frames"].shape == (4, 5, 4)
        want = sorted(float(e["features"][0, 0]) for e in source)
        np.testing.assert_allclose(sorted(firsts), want, rtol=1e-6)
        epochs.append(firsts)
    assert not np.array_equal(epochs[0], epochs[1])  # a new shuffle each epoch
    np.testing.assert_array_equal(ds[1]["label"], ds[1]["label"])  # deterministic


def test_process_shards_cover_every_example_once():
    source = _source(n=11)
    seen = []
    for shard in range(2):
        options = grain.sharding.ShardOptions(shard, 2)
        for batch in data.process_batches(source, 3, 5, shard_options=options):
            seen.extend(batch["index"].tolist())
            want = [source[i]["label"] for i in batch["index"]]
            np.testing.assert_array_equal(batch["label"], want)
    assert sorted(seen) == list(range(11))


def test_copy_group_labels():
    annotation = {
        "q1": {"ND": ["a"], "DS": ["b"]},
        "q2": {"ND": ["c"], "CS": ["d"]},
        "q3": {"DS": ["a", "c", "e"]},  # a compilation: left out with max_relevant=2
        "q4": {"DA": ["f"]},
    }
    ids = ["q1", "q2", "q3", "q4", "a", "b", "c", "d", "e", "f"]
    got = copy_group_labels(annotation, ids, max_relevant=2)
    np.testing.assert_array_equal(got, [0, 1, -1, -1, 0, 0, 1, -1, -1, -1])
    merged = copy_group_labels(annotation, ids)
    assert len(set(merged[[0, 1, 2, 4, 5, 6, 8]])) == 1


@pytest.mark.parametrize("hidden", [(), (5, 6)])
def test_save_and_load_model(tmp_path, hidden):
    model = HashingNet(4, 8, 3, hidden, rngs=nnx.Rngs(0))
    meta = dict(feature_dim=4, num_bits=8, num_classes=3, hidden_sizes=list(hidden))
    training.save_model(tmp_path, model, meta)
    loaded = training.load_model(tmp_path)
    frames = np.random.default_rng(0).normal(size=(2, 3, 4)).astype(np.float32)
    mask = np.ones((2, 3), bool)
    np.testing.assert_array_equal(np.asarray(loaded(frames, mask).bits), model(frames, mask).bits)
    assert len(loaded.hidden) == len(hidden)


def test_run_training_end_to_end(tmp_path):
    config = load_config_file("configs/hashing_64.py", "runlocal")
    config.num_steps = 4
    config.log_every = 2
    summary = training.run_training(config, str(tmp_path))
    assert np.isfinite(summary["final_loss"])
    assert summary["bytes_per_video"] == 8 and summary["num_queries"] == 8
    assert 0 < summary["mAP"] <= 1 and set(summary) >= {"mAP@5", "mAP@10", "mAP@20", "mAP@100"}
    ids, packed = training.load_codes(tmp_path, "database")
    assert packed.shape == (24, 2) and packed.dtype == np.uint32
    # The exported codes are the model's bits binarised at 0.5.
    model = training.load_model(tmp_path)
    sets = training.load_video_sets(config.data)
    rows, bits = training.encode(model, sets.database, 16, config.eval_max_frames)
    np.testing.assert_array_equal(packed[rows], codes.pack_bits(bits >= 0.5))
    assert list(ids) == [e["id"] for e in sets.database]


@pytest.mark.parametrize("bits", [64, 128, 256, 512])
def test_configs_set_bits(bits):
    config = load_config_file(f"configs/hashing_{bits}.py", "runlocal")
    assert config.num_bits == bits and config.task == "hashing" and config.num_steps <= 50


def test_demo_sets_hold_out_a_fold(tmp_path):
    (tmp_path / "queries.txt").write_text("q0\tq0.mp4\nq1\tq1.mp4\n")
    (tmp_path / "database.txt").write_text("a\ta.mp4\nb\tb.mp4\nc\tc.mp4\n")
    (tmp_path / "annotation.json").write_text('{"q0": {"ND": ["a"]}, "q1": {"DS": ["b"]}}')
    store = FeatureStore(tmp_path / "features")
    for i, v in enumerate(["q0", "q1", "a", "b", "c"]):
        store.write(v, np.full((2, 3), i, np.float32), {})
    data = ml_collections.ConfigDict(
        dict(
            kind="demo",
            demo_dir=str(tmp_path),
            features_dir=str(tmp_path / "features"),
            max_relevant=2,
            protocol="DSVR",
            folds=2,
            fold=1,
        )
    )
    sets = load_video_sets(data)
    assert [e["id"] for e in sets.queries] == ["q1"]
    assert [e["id"] for e in sets.database] == ["a", "b", "c"]
    labels = {e["id"]: e["label"] for e in sets.train}
    assert labels == {"q0": 0, "q1": -1, "a": 0, "b": -1, "c": -1}
    relevance, mask = training.relevance_of(sets, ["q1"], ["a", "b", "c"])
    np.testing.assert_array_equal(relevance, [[False, True, False]])


@pytest.mark.slow
def test_one_and_eight_devices_train_alike(tmp_path):
    config = load_config_file("configs/hashing_64.py", "runlocal")
    config.update(num_steps=3, log_every=1)
    task = training.HashingTask(config, training.load_video_sets(config.data).train)
    losses = {}
    for devices in (1, 8):
        config.num_devices = devices
        _, history = training.loop.train(task, config, str(tmp_path / str(devices)))
        losses[devices] = [row["loss"] for row in history if "loss" in row]
    np.testing.assert_allclose(losses[8], losses[1], rtol=1e-4)
    assert len(losses[1]) == 3


def test_each_process_reads_only_its_rows_of_the_global_batch(monkeypatch):
    config = load_config_file("configs/hashing_64.py", "runlocal")
    source = training.load_video_sets(config.data).train
    whole = training.HashingTask(config, source)
    monkeypatch.setattr(jax, "process_count", lambda: 2)
    parts = {}
    for process in (0, 1):
        monkeypatch.setattr(jax, "process_index", lambda p=process: p)
        task = training.HashingTask(config, source)
        parts[process] = [task.process_batch(step) for step in (0, 7, 40)]
    for i, step in enumerate((0, 7, 40)):  # 40: past the first epoch, a new shuffle
        expected = whole.batch(step)
        for key in ("frames", "mask", "label"):
            got = np.concatenate([parts[0][i][key], parts[1][i][key]])
            np.testing.assert_array_equal(got, expected[key])
        assert len(parts[0][i]["label"]) == config.batch_size // 2
