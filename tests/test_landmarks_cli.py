"""Landmark extraction (`--config.mode=landmarks`) and its systems: stored fingerprints equal the
waveform's, bad and soundless files are listed and the rest finish, a rerun skips, and
`--system=landmarks` / AuSiL with `landmarks_dir` score the stored landmarks."""

import ml_collections
import numpy as np
import pytest

from configs import extract as extract_config
from ndvr_jax.data.feature_lists import FeatureError
from ndvr_jax.features import extract
from ndvr_jax.features.landmarks import load_landmark_file
from ndvr_jax.io.audio import decode_audio, encode_audio
from ndvr_jax.io.store import FeatureStore
from ndvr_jax.jobs.similarity import default_similarity_config, run_similarity
from ndvr_jax.landmarks.fingerprint import LandmarkConfig, fingerprint
from ndvr_jax.landmarks.matching import aligned_counts, landmark_score
from ndvr_jax.search import load_similarities
from tests.media import write_test_video
from tests.test_landmarks import melody

RATE = LandmarkConfig().sample_rate
SOUNDS = ["s0", "s1", "s2", "q0", "q1"]


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    root = tmp_path_factory.mktemp("landmarks")
    sources = [melody(s, 6.0) for s in range(3)]
    waves = {f"s{i}": x for i, x in enumerate(sources)}
    waves["q0"] = 0.5 * (sources[0] + melody(7, 6.0))  # s0 under another melody
    waves["q1"] = 0.2 * sources[1][RATE:]  # a quieter span of s1
    waves["quiet"] = np.zeros(2 * RATE, np.float32)
    for name, x in waves.items():
        encode_audio(root / f"{name}.wav", x, RATE)
    write_test_video(root / "mute.mp4", seconds=1.0, fps=5, width=32, height=32)
    (root / "bad.wav").write_bytes(b"not a media file")
    ids = [*waves, "mute", "bad"]
    files = {i: root / f"{i}.mp4" if i == "mute" else root / f"{i}.wav" for i in ids}
    (root / "videos.txt").write_text("".join(f"{i}\t{files[i]}\n" for i in ids))
    config = extract_config.get_config("runlocal")
    config.mode = "landmarks"
    summary = extract(config, str(root / "videos.txt"), str(root / "marks"))
    return root, config, files, summary


def test_extraction_stores_the_fingerprints_and_lists_failures(stored):
    root, config, files, summary = stored
    assert sorted(summary.done) == sorted(SOUNDS)
    assert summary.failed == {"quiet": "silent", "mute": "no_audio_stream", "bad": "unreadable"}
    store = FeatureStore(root / "marks")
    for video in SOUNDS:
        samples = decode_audio(files[video], RATE).samples
        expected = fingerprint(samples - samples.mean())
        np.testing.assert_array_equal(
            load_landmark_file(store.feature_path(video), video), expected
        )
    assert load_landmark_file(store.feature_path("quiet"), "quiet").shape == (0, 2)
    assert store.load_meta("s0")["frame_seconds"] == pytest.approx(0.02)
    again = extract(config, str(root / "videos.txt"), str(root / "marks"))
    assert sorted(again.skipped) == sorted(summary.done) and not again.done
    assert again.failed == summary.failed  # soundless ones stay stored and listed


def similarity(root, **overrides) -> dict:
    for name, ids in (("queries", ["q0", "q1"]), ("database", ["s0", "s1", "s2", "quiet"])):
        (root / f"{name}.txt").write_text("".join(f"{v}\tunused\n" for v in ids))
    config = default_similarity_config()
    config.update(queries=str(root / "queries.txt"), database=str(root / "database.txt"))
    config.update(output=str(root / "sims.json"), **overrides)
    return load_similarities(run_similarity(ml_collections.ConfigDict(config)))


def test_landmark_system_scores_the_stored_landmarks(stored):
    root = stored[0]
    scores = similarity(root, system="landmarks", features_dir=str(root / "marks"))
    store = FeatureStore(root / "marks")
    marks = lambda ids: [load_landmark_file(store.feature_path(v), v) for v in ids]
    expected = landmark_score(aligned_counts(marks(["q0", "q1"]), marks(["s0", "s1", "s2"])), 40)
    for i, query in enumerate(["q0", "q1"]):
        assert set(scores[query]) == {"s0", "s1", "s2"}  # the silent video has no pairs
        assert max(scores[query], key=scores[query].get) == f"s{i}"
        np.testing.assert_allclose([scores[query][f"s{j}"] for j in range(3)], expected[i])


def test_ausil_with_landmarks_adds_the_weighted_score(stored):
    root = stored[0]
    audio = FeatureStore(root / "audio", "ausil")
    rng = np.random.default_rng(0)
    for video in SOUNDS:
        audio.write(video, np.abs(rng.standard_normal((5, 640))), {"status": "ok"})
    audio.write("quiet", np.zeros((0, 640)), {"status": "silent"})
    plain = similarity(root, system="ausil", features_dir=str(root / "audio"))
    fused = similarity(root, system="ausil", features_dir=str(root / "audio"),
                       landmarks_dir=str(root / "marks"), landmark_weight=0.3)  # fmt: skip
    alone = similarity(root, system="landmarks", features_dir=str(root / "marks"))
    for query in ("q0", "q1"):
        for video in plain[query]:
            expected = plain[query][video] + 0.3 * alone[query][video]
            assert fused[query][video] == pytest.approx(expected, abs=1e-5)


def test_a_file_that_is_not_landmarks_is_named(stored, tmp_path):
    root = stored[0]
    np.save(tmp_path / "s0.npy", np.array([[0.5, 1.0]], np.float32))
    with pytest.raises(FeatureError, match="'s0'.*does not hold landmarks"):
        load_landmark_file(tmp_path / "s0.npy", "s0")
    with pytest.raises(FeatureError, match="does not exist"):
        similarity(root, system="landmarks", features_dir=str(tmp_path))
