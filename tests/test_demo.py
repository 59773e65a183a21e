"""The demo benchmark: a tiny build is complete, deterministic and its ground truth is true."""

import json
import time
from pathlib import Path

import av
import numpy as np
import pytest
from scipy.signal import correlate

from ndvr_jax.data.demo import audio, build_demo_benchmark, make_plan, manifest_for, transforms
from ndvr_jax.data.demo.shots import crop_resize, resize, window
from ndvr_jax.data.demo.truth import LABELS

_JSON = ("manifest.json", "annotation.json", "segments.json")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo")
    build_demo_benchmark(out, seed=0, size="tiny", verbose=False)
    return out


@pytest.fixture(scope="module")
def videos(demo: Path) -> dict:
    return json.loads((demo / "manifest.json").read_text())["videos"]


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _sound(path: Path, rate: int = 16000) -> np.ndarray:
    """Mono sound at `rate`."""
    with av.open(str(path)) as container:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks = [
            out.to_ndarray().ravel()
            for frame in [*container.decode(audio=0), None]
            for out in resampler.resample(frame)
        ]
    return np.concatenate(chunks)


def _waveform_similarity(a: np.ndarray, b: np.ndarray, max_lag: int = 1600) -> float:
    """Highest normalised cross-correlation of two waveforms over lags up to `max_lag` samples
    (codec delays differ); about 0 for unrelated sounds."""
    n = min(len(a), len(b))
    a, b = a[:n] - a[:n].mean(), b[:n] - b[:n].mean()
    xcorr = correlate(a, b, mode="full", method="fft")[n - 1 - max_lag : n + max_lag]
    return float(np.abs(xcorr).max() / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


def _as_float(frame: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    return resize(frame.astype(np.float32) / 255, *hw)


def test_plan_is_deterministic_and_seeded():
    text = json.dumps(manifest_for(0, "tiny"), indent=1)
    assert json.dumps(manifest_for(0, "tiny"), indent=1) == text
    assert json.dumps(manifest_for(1, "tiny"), indent=1) != text
    with pytest.raises(ValueError, match="size"):
        make_plan(0, "huge")


def test_small_plan_covers_every_kind_and_several_formats():
    videos = make_plan(0, "small")
    kinds = {v["kind"] for v in videos.values()}
    assert kinds == {
        "reference",
        "related",
        "distractor",
        "copy",
        "audio_copy",
        "video_copy",
        "compilation",
    }
    assert len({v["container"] for v in videos.values()}) >= 6
    assert len({v["video_codec"] for v in videos.values()}) >= 5
    assert len({v["audio_codec"] for v in videos.values()} - {None}) >= 5
    relations = {v["relation"]["label"] for v in videos.values() if "relation" in v}
    assert relations == {"DS", "CS", "IS"}


def test_rebuild_is_skipped_and_byte_identical(demo: Path):
    before = {name: (demo / name).read_bytes() for name in _JSON}
    mtimes = {p: p.stat().st_mtime_ns for p in (demo / "videos").iterdir()}
    start = time.monotonic()
    build_demo_benchmark(demo, seed=0, size="tiny", verbose=False)
    assert time.monotonic() - start < 2.0
    assert {name: (demo / name).read_bytes() for name in _JSON} == before
    assert {p: p.stat().st_mtime_ns for p in (demo / "videos").iterdir()} == mtimes
    assert before["manifest.json"].decode() == json.dumps(manifest_for(0, "tiny"), indent=1)


def test_lists_and_annotation_are_consistent(demo: Path, videos: dict):
    lists = {
        name: dict(line.split("\t") for line in (demo / name).read_text().splitlines())
        for name in ("videos.txt", "queries.txt", "database.txt")
    }
    assert lists["videos.txt"] == {**lists["database.txt"], **lists["queries.txt"]}
    assert set(lists["videos.txt"]) == set(videos)
    assert all(Path(p).is_file() for p in lists["videos.txt"].values())
    queries, database = set(lists["queries.txt"]), set(lists["database.txt"])
    assert {v["role"] for v in videos.values()} == {"query", "database"}
    annotation = json.loads((demo / "annotation.json").read_text())
    assert set(annotation) == queries
    for qid, labels in annotation.items():
        assert set(labels) <= set(LABELS)
        assert all(set(ids) <= database for ids in labels.values())
        q = videos[qid]
        if q["kind"] == "audio_copy":
            assert labels == {"DA": q["sources"]}
        if q["kind"] in ("copy", "video_copy") and "subclip" not in q["transforms"]:
            assert labels["ND"] == q["sources"]
        copied_sound = any(seg["type"] == "copy" for seg in q["audio"] or ())
        assert ("DA" in labels) == copied_sound
        assert not copied_sound or q["kind"] != "video_copy"
    used = {vid for labels in annotation.values() for ids in labels.values() for vid in ids}
    distractors = {vid for vid, v in videos.items() if v["kind"] == "distractor"}
    assert distractors and not used & distractors


def test_every_file_decodes_to_its_recorded_format_and_duration(demo: Path, videos: dict):
    for vid, v in videos.items():
        with av.open(str(demo / v["path"])) as container:
            (stream,) = container.streams.video
            assert stream.codec_context.codec.canonical_name == v["video_codec"], vid
            assert (stream.codec_context.width, stream.codec_context.height) == (
                v["width"],
                v["height"],
            )
            assert len(container.streams.audio) == v["has_audio"], vid
            if v["has_audio"]:
                audio = container.streams.audio[0].codec_context
                assert audio.codec.canonical_name == v["audio_codec"], vid
                assert audio.sample_rate == v["sample_rate"], vid
                assert audio.layout.nb_channels == v["channels"], vid
        n_frames = len(_frames(demo / v["path"]))
        assert abs(n_frames - v["n_frames"]) <= 1, vid
        assert abs(n_frames / v["fps"] - v["duration"]) <= 1.5 / v["fps"], vid
        if v["has_audio"]:
            seconds = len(_sound(demo / v["path"])) / 16000
            assert abs(seconds - v["duration"]) < 0.15, vid


def test_segments_lie_within_both_videos(demo: Path, videos: dict):
    segments = json.loads((demo / "segments.json").read_text())
    assert {s["query"] for s in segments} == {
        vid for vid, v in videos.items() if v["role"] == "query"
    }
    for s in segments:
        q, src = videos[s["query"]], videos[s["source"]]
        assert 0 <= s["query_start"] < s["query_end"] <= q["duration"] + 1e-6
        assert 0 <= s["source_start"] < s["source_end"] <= src["duration"] + 1e-6
        assert s["modality"] in ("video", "audio", "video+audio")
        assert src["role"] == "database" and q["role"] == "query"


def test_audio_copies_share_the_sound_but_not_the_pictures(demo: Path, videos: dict):
    checked = 0
    for v in videos.values():
        if v["kind"] != "audio_copy":
            continue
        (source,) = v["sources"]
        sound = _sound(demo / v["path"])
        same = _waveform_similarity(sound, _sound(demo / videos[source]["path"]))
        others = [
            _waveform_similarity(sound, _sound(demo / o["path"]))
            for oid, o in videos.items()
            if o["role"] == "database" and oid != source
        ]
        assert same > 0.8 and max(others) < 0.5, (same, others)
        a, b = _frames(demo / v["path"]), _frames(demo / videos[source]["path"])
        hw = (v["height"], v["width"])
        assert np.abs(_as_float(a[len(a) // 2], hw) - _as_float(b[len(b) // 2], hw)).mean() > 0.1
        checked += 1
    assert checked


def test_copied_spans_show_the_source_pictures(demo: Path, videos: dict):
    """Untransformed copied spans (compilations, video copies) match their source frames."""
    checked = 0
    for qid, q in videos.items():
        t0 = 0.0
        for seg in q["visual"]:
            if seg["type"] == "copy" and not seg["transforms"] and "media_swap" not in seg:
                src = videos[seg["source"]]
                i = int((t0 + seg["duration"] / 2) * q["fps"])
                s = seg["source_start"] + (i / q["fps"] - t0) * seg["speed"]
                query_frame = _frames(demo / q["path"])[i]
                source_frame = _frames(demo / src["path"])[int(s * src["fps"] + 1e-6)]
                hw = (q["height"], q["width"])
                diff = np.abs(_as_float(query_frame, hw) - _as_float(source_frame, hw)).mean()
                assert diff < 0.06, (qid, seg["source"], diff)
                checked += 1
            t0 += seg["duration"]
    assert checked


def test_related_ds_video_contains_the_shot(demo: Path, videos: dict):
    for v in videos.values():
        if v.get("relation", {}).get("label") != "DS":
            continue
        rel, ref = v["relation"], videos[v["relation"]["to"]]
        mid = (rel["own_span"][0] + rel["own_span"][1]) / 2
        ref_t = rel["span"][0] + mid - rel["own_span"][0]
        a = _frames(demo / v["path"])[int(mid * v["fps"])]
        b = _frames(demo / ref["path"])[int(ref_t * ref["fps"])]
        hw = (v["height"], v["width"])
        assert np.abs(_as_float(a, hw) - _as_float(b, hw)).mean() < 0.06


def test_crop_resize_matches_plain_bilinear():
    rng = np.random.default_rng(0)
    image = rng.random((7, 9, 3)).astype(np.float32)
    out = crop_resize(image, (0, 0, 7, 9), 7, 9)  # identity
    np.testing.assert_allclose(out, image, atol=1e-6)
    half = crop_resize(image, (0, 0, 7, 9), 7, 18)  # 2x horizontally: halfway samples
    expected = 0.75 * image[:, 1:-1] + 0.25 * image[:, :-2]
    np.testing.assert_allclose(half[:, 2:-2:2], expected, atol=1e-6)
    assert window((100, 200), 1.0, (0.5, 0.5, 1.0)) == (0.0, 50.0, 100.0, 100.0)


def test_interrupted_build_resumes_to_identical_files(
    demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from ndvr_jax.data.demo import build as build_module

    real_write, calls = build_module.write_video, []

    def failing_write(path, *args, **kwargs):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append(path)
        real_write(path, *args, **kwargs)

    monkeypatch.setattr(build_module, "write_video", failing_write)
    with pytest.raises(KeyboardInterrupt):
        build_demo_benchmark(tmp_path, seed=0, size="tiny", verbose=False)
    assert not (tmp_path / "manifest.json").exists()
    written = {p: p.stat().st_mtime_ns for p in calls}
    monkeypatch.setattr(build_module, "write_video", real_write)
    build_demo_benchmark(tmp_path, seed=0, size="tiny", verbose=False)
    assert {p: p.stat().st_mtime_ns for p in calls} == written  # kept, not rewritten
    assert (tmp_path / "manifest.json").read_text() == json.dumps(manifest_for(0, "tiny"), indent=1)
    assert not list(tmp_path.glob(".*"))  # no temporary or pending files left
    for path in (demo / "videos").iterdir():  # same bytes as a build in one go
        assert (tmp_path / "videos" / path.name).read_bytes() == path.read_bytes(), path.name


def test_transforms_known_answers():
    rng = np.random.default_rng(0)
    image = rng.random((48, 64, 3)).astype(np.float32)
    flip = transforms.sample("hflip", rng)
    np.testing.assert_array_equal(transforms.apply(flip, image, 0.0), image[:, ::-1])
    gray = transforms.apply(transforms.sample("grayscale", rng), image, 0.0)
    np.testing.assert_allclose(gray[..., 0], image @ [0.299, 0.587, 0.114], rtol=1e-5)
    assert np.ptp(gray, axis=2).max() == 0
    identity = {"name": "color", "brightness": 0, "contrast": 1, "saturation": 1, "hue_deg": 0}
    np.testing.assert_allclose(transforms.apply(identity, image, 0.0), image, atol=1e-5)
    crop = {"name": "crop", "keep_h": 0.5, "keep_w": 0.75, "u": 1.0, "v": 0.0}
    np.testing.assert_array_equal(transforms.apply(crop, image, 0.0), image[:24, 16:])
    for name in transforms.TRANSFORMS:
        spec = transforms.sample(name, np.random.default_rng(1))
        assert json.loads(json.dumps(spec)) == spec  # plain JSON parameters
        out = transforms.apply(spec, image, 1.5)
        assert out.ndim == 3 and out.shape[2] == 3 and out.min() >= 0 and out.max() <= 1, name
    border = transforms.apply(transforms.sample("border", rng), image, 0.0)  # 4:3 -> 16:9
    assert border.shape[1] / border.shape[0] == pytest.approx(16 / 9, rel=0.1)
    noise = transforms.sample("noise", rng)
    a, b = (transforms.apply(noise, image, t) for t in (0.0, 0.5))
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, transforms.apply(noise, image, 0.0))  # seeded per frame


def test_audio_copy_span_known_answers():
    track = audio.synth_track(seed=3, duration=1.0, channels=2)
    assert track.shape == (2, 44100) and track.dtype == np.float32
    np.testing.assert_array_equal(track, audio.synth_track(seed=3, duration=1.0, channels=2))
    other = audio.synth_track(seed=4, duration=1.0, channels=2)
    assert abs(np.corrcoef(track[0], other[0])[0, 1]) < 0.2
    span = audio.copy_span(track, 0.25, 1.0, 0.5, channels=2)
    np.testing.assert_allclose(span, track[:, 11025:33075], atol=1e-6)
    fast = audio.copy_span(track, 0.0, 2.0, 0.25, channels=1, gain_db=-6.0)
    expected = track.mean(0)[: 2 * 11025 : 2] * 10 ** (-6 / 20)
    np.testing.assert_allclose(fast[0], expected, atol=1e-6)
    noisy = audio.copy_span(track, 0.0, 1.0, 1.0, channels=2, noise_snr_db=20.0, seed=1)
    snr = 10 * np.log10(np.mean(track**2) / np.mean((noisy - track) ** 2))
    assert snr == pytest.approx(20.0, abs=0.5)
