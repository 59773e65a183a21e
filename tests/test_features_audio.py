"""Audio extraction: AuSiL segment features, no-audio / silent statuses, failures, resume."""

import json

import numpy as np
import pytest

from configs import extract as extract_config
from ndvr_jax.backbones.audio_cnn import FEATURE_DIM, mac_extractor, segment_features
from ndvr_jax.features import extract
from ndvr_jax.features.audio import audio_backbone, create_audio_cnn, load_audio_segments
from ndvr_jax.io.audio import encode_audio
from ndvr_jax.io.store import FeatureStore, read_id_path_list
from tests.media import write_test_video

SR = 44100


def write_wav(path, samples):
    encode_audio(path, samples, SR)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    t = np.arange(int(3.2 * SR)) / SR
    write_wav(root / "tone.wav", 0.5 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(3 * t)))
    write_wav(root / "short.wav", 0.3 * rng.standard_normal(int(1.0 * SR)))
    write_wav(root / "quiet.wav", np.zeros(2 * SR))
    write_test_video(root / "mute.mp4", seconds=1.0, fps=5, width=32, height=32)
    (root / "bad.mp4").write_bytes(b"not a media file")
    names = ["tone.wav", "bad.mp4", "mute.mp4", "short.wav", "gone.wav", "quiet.wav"]
    ids = ["tone", "bad", "mute", "short", "gone", "quiet"]
    (root / "list.txt").write_text(
        "".join(f"{i}\t{root / n}\n" for i, n in zip(ids, names, strict=True))
    )

    config = extract_config.get_config("runlocal")
    config.mode = "audio"
    config.audio.backbone = "kumar2018"
    config.audio.weights = None
    config.num_devices = 4
    summary = extract(config, str(root / "list.txt"), str(root / "features"))
    return root, config, summary


def test_statuses_failures_and_store(extracted):
    root, config, summary = extracted
    assert summary.done == ["tone", "short"]
    assert summary.failed == {
        "bad": "unreadable",
        "mute": "no_audio_stream",
        "gone": "missing",
        "quiet": "silent",
    }
    rows = [r.split("\t")[:3] for r in (root / "features/failures.tsv").read_text().splitlines()]
    assert sorted((r[0], r[2]) for r in rows) == sorted(summary.failed.items())

    store = FeatureStore(root / "features", "ausil")
    assert (root / "features/tone/wlaf.npz").is_file()
    assert store.load("tone").shape == (3, FEATURE_DIM)  # ceil((277 - 174) / 87) + 1 windows
    assert store.load("short").shape == (1, FEATURE_DIM)
    assert store.load_meta("short")["status"] == "too_short"
    for video_id, status in [("mute", "no_audio_stream"), ("quiet", "silent")]:
        assert store.load(video_id).shape == (0, FEATURE_DIM)
        assert store.load_meta(video_id)["status"] == status
    meta = store.load_meta("tone")
    assert meta["timestamps"] == pytest.approx([0.0, 87 * 512 / SR, 2 * 87 * 512 / SR], abs=1e-6)
    assert meta["weights"] == "random (untrained)" and meta["status"] == "ok"
    listed = read_id_path_list(root / "features/feature_files.txt")
    assert [v for v, _ in listed] == ["tone", "short"]


def test_features_match_the_network(extracted):
    root, config, _ = extracted
    model, _ = create_audio_cnn(None)
    extract_fn = mac_extractor(model)
    store = FeatureStore(root / "features", "ausil")
    for video_id in ("tone", "short"):
        backbone = audio_backbone("kumar2018")
        windows = load_audio_segments(str(root / f"{video_id}.wav"), backbone).frames
        expected = segment_features(extract_fn, windows, batch_size=8)
        np.testing.assert_allclose(store.load(video_id), expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(np.linalg.norm(expected, axis=1), np.sqrt(12), rtol=1e-5)


def test_rerun_skips_stored_videos_and_keeps_listing_failures(extracted):
    root, config, _ = extracted
    before = (root / "features/tone.json").stat().st_mtime_ns
    again = extract(config, str(root / "list.txt"), str(root / "features"))
    assert again.done == [] and again.skipped == ["tone", "short"]
    assert set(again.failed) == {"bad", "mute", "gone", "quiet"}
    assert (root / "features/tone.json").stat().st_mtime_ns == before
    assert json.loads((root / "features/mute.json").read_text())["status"] == "no_audio_stream"


def test_musicnn_backbone_has_its_own_front_end(extracted, tmp_path):
    root = extracted[0]
    config = extract_config.get_config("runlocal")
    config.mode, config.num_devices = "audio", 2
    config.audio.weights = None  # random: the test must not need the musicnn package
    lines = [f"{v}\t{root / f'{v}.wav'}\n" for v in ("tone", "quiet")]
    (tmp_path / "list.txt").write_text("".join(lines))
    summary = extract(config, str(tmp_path / "list.txt"), str(tmp_path / "features"))
    assert summary.done == ["tone"] and summary.failed == {"quiet": "silent"}
    store = FeatureStore(tmp_path / "features", "ausil")
    meta = store.load_meta("tone")
    assert (meta["backbone"], meta["sample_rate"], meta["n_mels"]) == ("musicnn_vgg", 16000, 96)
    assert meta["segment_seconds"] == pytest.approx(3.0, abs=0.01)
    assert store.load("tone").shape == (2, 640)  # 201 frames of 3.2 s: windows at 0 and 62
