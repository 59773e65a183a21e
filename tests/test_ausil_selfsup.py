"""Self-supervised AuSiL: views, validation split, in-batch hard negatives (never the video
itself), validation mAP, and two steps of the `train` binary's task without an annotation."""

import dataclasses
import json

import jax.numpy as jnp
import numpy as np

from configs import ausil_selfsup
from ndvr_jax.ausil import selfsup
from ndvr_jax.ausil.model import PCAWhitening
from ndvr_jax.ausil.saved import load_model, model_mode
from ndvr_jax.ausil.scoring import make_scorer
from ndvr_jax.jobs.train import run_task
from ndvr_jax.training.heldout import retrieval_map, validation_split

DIMS = 8


def test_hardest_negative_is_never_the_diagonal():
    sim = jnp.array([[0.9, 0.2, 0.5], [0.1, 0.8, 0.3], [0.7, 0.6, 0.95]])
    np.testing.assert_allclose(selfsup.hardest_negatives(sim), [0.5, 0.3, 0.7])


def test_validation_split_and_map():
    train, held = validation_split([f"v{i}" for i in range(10)][::-1], 3)
    assert held == ["v2", "v5", "v8"] and len(train) == 7 and not set(train) & set(held)
    assert validation_split(["a", "b"], 0) == (["a", "b"], [])
    scores = np.array([[0.9, 0.1, 0.5], [0.9, 0.2, 0.5], [0.3, 0.3, 0.1]])
    # ranks 1, 3 and 2 (a tie counts against the query)
    np.testing.assert_allclose(retrieval_map(scores, [0, 1, 1]), (1 + 1 / 3 + 1 / 2) / 3)


class FakeFeaturizer:
    """One segment per second: its feature is the second's mean sample value."""

    sample_rate, hop_seconds = 10, 1.0

    def decode(self, video_id, path):
        return None if path == "bad" else np.repeat(np.arange(40.0) + 100 * int(path), 10)

    def __call__(self, samples):
        n = samples.size // 10
        return samples[: n * 10].reshape(n, 10).mean(1, keepdims=True) if n else None


def test_make_views_records_sources_and_starts(tmp_path):
    quiet = selfsup.AudioAugmentConfig(
        **{f.name: 0.0 for f in dataclasses.fields(selfsup.AudioAugmentConfig) if "prob" in f.name}
    )
    entries = [("a", "0"), ("b", "1"), ("x", "bad")]
    features, views = selfsup.make_views(
        entries, FakeFeaturizer(), 2, (5.0, 9.0), 0, quiet, cache_dir=tmp_path
    )
    assert set(features) == {"a", "b", "a~aug0", "a~aug1", "b~aug0", "b~aug1"}
    for key, view in views.items():
        assert key.startswith(view.source + "~")
        source = features[view.source]
        first = features[key][0, 0]  # the span starts on a second boundary up to rounding
        assert abs(first - source[view.start, 0]) <= 1.0
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == ["a.json", "a.npz"]
    again = selfsup.make_views(entries[::-1], None, 2, (5.0, 9.0), 0, quiet, cache_dir=tmp_path)
    assert again[1] == views  # from the cache (no featurizer needed), in any order
    for key in features:
        np.testing.assert_array_equal(again[0][key], features[key])


def write_views(workdir, rng, n_videos=8, copies=2):
    """A filled views cache: videos of random segments, views = noisy crops of them."""
    cache = workdir / selfsup.VIEWS_DIR
    cache.mkdir(parents=True)
    for i in range(n_videos):
        video = rng.standard_normal((int(rng.integers(18, 30)), DIMS)).astype(np.float32)
        arrays, meta = {"video": video}, {}
        for k in range(copies):
            start = int(rng.integers(0, len(video) - 12))
            view = video[start : start + 12] + 0.2 * rng.standard_normal((12, DIMS))
            arrays[f"aug{k}"] = view.astype(np.float32)
            meta[f"aug{k}"] = {"source": f"v{i}", "start": start, "applied": "noise"}
        np.savez(cache / f"v{i}.npz", **arrays)
        (cache / f"v{i}.json").write_text(json.dumps(meta))
    (workdir / "videos.txt").write_text("".join(f"v{i}\t-\n" for i in range(n_videos)))


def test_batches_draw_distinct_videos_and_crops_hold_the_view():
    rng = np.random.default_rng(0)
    features, views = {}, {}
    for i in range(6):
        features[f"v{i}"] = np.full((50, DIMS), i, np.float32) + np.arange(50)[:, None] / 100
        features[f"v{i}~aug0"] = features[f"v{i}"][30:45]
        views[f"v{i}~aug0"] = selfsup.View(f"v{i}", 30, "")
    config = ausil_selfsup.get_config("runlocal")
    config.batch_size, config.max_segments = 6, 24
    pca = PCAWhitening(np.zeros(DIMS, np.float32), np.eye(DIMS, 4, dtype=np.float32))
    task = selfsup.SelfSupTask(config, features, views, pca)
    for step in range(3):
        batch = task.batch(step)
        videos = np.floor(batch["positive"][:, 0, 0]).astype(int)
        assert sorted(videos) == list(range(6))  # each video once: no negative is the anchor's
        np.testing.assert_array_equal(np.floor(batch["anchor"][:, 0, 0]).astype(int), videos)
        for row in range(6):  # the positive crop covers the view's segments
            anchor = set(np.round(batch["anchor"][row, : batch["anchor_len"][row], 1], 2))
            crop = set(np.round(batch["positive"][row, : batch["positive_len"][row], 1], 2))
            assert anchor <= crop
    del rng


def test_selfsup_training_two_steps(tmp_path):
    workdir = tmp_path / "run"
    write_views(workdir, np.random.default_rng(1))
    config = ausil_selfsup.get_config("runlocal")
    config.video_list = str(workdir / "videos.txt")
    config.pca_dims, config.max_segments = 6, 16
    config.batch_size, config.num_steps, config.num_devices = 4, 2, 2
    config.eval_every, config.checkpoint_every, config.log_every = 1, 2, 2
    config.validation_every = 4
    summary = run_task(config, str(workdir))
    assert summary["train_videos"] == 6 and summary["validation_videos"] == 2
    assert 0 < summary["validation_map"] <= 1 and 0 < summary["validation_map_untrained"] <= 1
    assert summary["best_step"] in (1, 2)
    model = load_model(workdir)
    assert model.pca_weights.shape == (DIMS, 6)
    assert np.isfinite(summary["loss"])
    # the workdir scores the way its validation chose, unless told otherwise
    beat = summary["validation_map"] > summary["validation_map_untrained"]
    assert summary["mode"] == ("trained" if beat else "untrained") == model_mode(workdir)
    for mode in ("trained", "untrained"):
        sizes = workdir / "ausil_model.json"
        sizes.write_text(json.dumps({**json.loads(sizes.read_text()), "mode": mode}))
        assert make_scorer(str(workdir))[1] == mode
        assert make_scorer(str(workdir), untrained=True)[1] == "untrained"
        assert make_scorer(str(workdir / "ausil_model.npz"))[1] == "trained"  # the file itself
