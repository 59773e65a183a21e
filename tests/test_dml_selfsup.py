"""Visual copy augmentations and self-supervised DML end to end on tiny videos."""

from __future__ import annotations

import json

import numpy as np

from configs.dml_selfsup import get_config
from ndvr_jax.dml.augment import TRANSFORMS, augment_frames, content_box, sample_chain
from ndvr_jax.dml.embed import load_dml
from ndvr_jax.dml.selfsup import VIEWS_FILE, run_training, validation_map, validation_rows
from ndvr_jax.jobs.train import TASKS
from tests.media import write_test_video


def letterboxed(seed: int = 0) -> np.ndarray:
    """Two 32x32 canvases with a random 16-row picture between black bands."""
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    frames[:, 8:24] = np.random.default_rng(seed).integers(1, 256, (2, 16, 32, 3))
    return frames


def test_flip_turns_the_picture_inside_its_letterbox() -> None:
    frames = letterboxed()
    assert content_box(frames) == (slice(8, 24), slice(0, 32))
    out = augment_frames(frames, [0.0, 1.0], [{"name": "hflip"}])
    np.testing.assert_array_equal(out, frames[:, :, ::-1])


def test_inset_shows_the_other_video_and_chains_are_seeded() -> None:
    host, guest = letterboxed(0), np.full((2, 32, 32, 3), 200, np.uint8)
    spec = {"name": "inset", "scale": 0.5, "u": 0.0, "v": 0.0}
    out = augment_frames(host, [0.0, 1.0], [spec], other=guest)
    np.testing.assert_array_equal(out[:, 8:16, :16], 200)  # top-left quarter of the picture
    np.testing.assert_array_equal(out[:, 16:24], host[:, 16:24])
    np.testing.assert_array_equal(augment_frames(host, [0.0, 1.0], [spec]), host)  # no guest
    rng = lambda: np.random.default_rng(3)
    assert sample_chain(rng()) == sample_chain(rng())
    chains = [sample_chain(np.random.default_rng(s), 3) for s in range(30)]
    assert all(1 <= len(c) <= 3 for c in chains)
    assert {"inset", "pip", "hflip", "crop"} <= {t["name"] for c in chains for t in c}
    assert set(TRANSFORMS) >= {t["name"] for c in chains for t in c}


def test_validation_rows_and_map_known_answers() -> None:
    groups = np.array([0, 0, 0, 1, 1, 2, 2])  # each group: its video first, then its copies
    queries, database = validation_rows(groups, np.array([0, 2]))
    np.testing.assert_array_equal(queries, [1, 2, 6])
    np.testing.assert_array_equal(database, [0, 5])
    vectors = np.array([[1, 0], [1, 0.1], [0.1, 1], [5, 5], [5, 5], [0, 2], [1, 0.2]], float)
    # copy 1 ranks its video first; copy 2 second; copy 6 ranks video 0 first (its own second)
    np.testing.assert_allclose(validation_map(vectors, groups, queries, database), 2 / 3)


def _video_list(tmp_path, sizes) -> str:
    lines = []
    for i, (seconds, width) in enumerate(sizes):
        write_test_video(tmp_path / f"v{i}.mp4", seconds=seconds, width=width, height=64)
        lines.append(f"v{i}\t{tmp_path / f'v{i}.mp4'}")
    (tmp_path / "videos.txt").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "videos.txt")


def test_selfsup_trains_on_a_video_list(tmp_path) -> None:
    config = get_config("runlocal")
    config.video_list = _video_list(tmp_path, [(2, 96), (3, 64), (2, 80)])
    config.extract.size = 32
    config.num_steps = config.checkpoint_every = 2
    config.augment.copies_per_video = 1
    assert TASKS[config.task] == "ndvr_jax.dml.selfsup"
    summary = run_training(config, str(tmp_path / "run"))
    assert np.isfinite(summary["loss"]) and summary["validation_videos"] == 0
    with np.load(tmp_path / "run" / VIEWS_FILE) as views:
        np.testing.assert_array_equal(views["groups"], [0, 0, 1, 1, 2, 2])
        assert views["features"].shape == (6, 2048)
        np.testing.assert_allclose(np.linalg.norm(views["features"], axis=1), 1.0, atol=1e-5)
    model, _ = load_dml(tmp_path / "run")
    assert model.layers[0].in_features == 2048


def test_selfsup_keeps_the_best_network_on_held_out_videos(tmp_path) -> None:
    config = get_config("runlocal")
    config.video_list = _video_list(tmp_path, [(2, 96), (2, 64), (2, 80), (2, 72)])
    config.extract.size = 32
    config.num_steps, config.checkpoint_every, config.eval_every = 4, 2, 1
    config.augment.copies_per_video = 1
    config.validation_every = 2  # v1 and v3 held out
    summary = run_training(config, str(tmp_path / "run"))
    assert (summary["train_videos"], summary["validation_videos"]) == (2, 2)
    meta = json.loads((tmp_path / "run" / "dml_model.json").read_text())
    logged = [
        json.loads(line)
        for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
        if "validation_map" in line
    ]
    scores = {row["step"]: row["validation_map"] for row in logged}
    assert len(scores) == 4 and meta["validation_map"] == max(scores.values())
    assert meta["step"] == min(s for s, v in scores.items() if v == meta["validation_map"])
    assert 0.5 <= meta["validation_map_untrained"] <= 1.0  # two videos: rank 1 or 2
