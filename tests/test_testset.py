"""The independent test set on a fake package cache: consistent ground truth, recorded
transformations, test-only media, audio operations and resumable builds (nothing downloaded)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from ndvr_jax.data.corpus import audio_ops, copy_classes
from ndvr_jax.data.corpus.collect import collect
from ndvr_jax.data.corpus.pool import MediaPool
from ndvr_jax.data.corpus.testset import TestSetConfig, build_testset, make_plan
from ndvr_jax.data.demo import transforms
from ndvr_jax.data.demo.media import AUDIO_RATE
from tests.test_corpus import make_fake_cache, no_network  # noqa: F401 (fixture)

TINY = TestSetConfig(
    n_references=3,
    n_distractors=1,
    seconds=(2.0, 3.0),
    shot_seconds=(1.0, 1.5),
    frame_sizes=((72, 96),),
    fps=(10,),
    copy_fps=(8,),
    visual_classes=("crop", "pip_inset", "pip_host", "combo_pip_speed", "letterbox"),
    audio_classes=("tempo", "mono_8k", "mix_speech"),
    visual_per_class=1,
    audio_per_class=1,
    n_compilations=1,
    compilation_parts=2,
    part_seconds=(1.0, 1.5),
    max_side=128,
)


@pytest.fixture()
def fake(tmp_path, no_network):  # noqa: F811
    cache = tmp_path / "cache"
    return cache, make_fake_cache(cache)


def _plan(cache, sources, config=TINY, seed=0):
    return make_plan(MediaPool(collect("test", cache, sources, verbose=False)), config, seed)


def test_plan_ground_truth_is_consistent(fake):
    from ndvr_jax.data.demo import truth

    cache, sources = fake
    videos = _plan(cache, sources)
    refs = {vid for vid, v in videos.items() if v["kind"] == "reference"}
    queries = {vid: v for vid, v in videos.items() if v["role"] == "query"}
    assert len(queries) == 5 + 3 + 1
    database_media = {m for v in videos.values() if v["role"] == "database" for m in v["media"]}
    assert all(m.startswith("fake-test-") for m in database_media)
    annotation = truth.annotation(videos)
    for qid, q in queries.items():
        labels = annotation[qid]
        copied = set().union(*labels.values())
        assert copied and copied <= refs and copied == set(q["sources"])
        assert q["transform_class"] in (*TINY.visual_classes, *TINY.audio_classes, "compilation")
        if q["modality"] == "audio":  # foreign pictures only: no visual label, the sound copied
            assert set(labels) == {"DA"}
            shown = {s["source"] for seg in q["visual"] for s in seg["shots"]}
            assert not shown & database_media
        if q["modality"] == "visual":
            assert labels.get("ND", []) + labels.get("DS", []) == q["sources"]
    for seg in truth.segments(videos):
        src, query = videos[seg["source"]], videos[seg["query"]]
        assert 0 <= seg["source_start"] < seg["source_end"] <= src["duration"] + 1e-6
        assert 0 <= seg["query_start"] < seg["query_end"] <= query["duration"] + 1e-6
    # a query's own sound (foreign soundtracks, fillers, mixed-in words and music) comes from
    # tracks and speakers that no database video plays, not just from other spans of them
    pool = MediaPool(collect("test", cache, sources, verbose=False))
    database_sound = {m for m in database_media if m in pool.files}
    unit = lambda m: pool.group(m) if m in pool.sounds("speech") else m  # a speaker, or a track
    database_units = {unit(m) for m in database_sound}
    foreign = set()
    for q in queries.values():
        for seg in q["audio"] or ():
            foreign |= {p["name"] for p in seg.get("pieces", ())}
            for effect in seg.get("effects", ()):
                foreign |= set(effect.get("others", ()))
    assert foreign and database_sound
    assert (
        not {pool.group(m) if m in pool.sounds("speech") else m for m in foreign} & database_units
    )
    # the same seed plans the same test set; another seed another one
    assert json.dumps(_plan(cache, sources)) == json.dumps(videos)
    assert json.dumps(_plan(cache, sources, seed=1)) != json.dumps(videos)


def test_test_parameters_lie_outside_the_demo_ranges():
    rng = np.random.default_rng(0)
    for _ in range(20):
        assert copy_classes.visual_params("crop", rng)["keep_h"] <= 0.6  # demo: 0.6 .. 0.85
        assert copy_classes.visual_params("blur", rng)["sigma"] > 2.5  # demo: 1.2 .. 2.5
        assert abs(copy_classes.visual_params("rotate", rng)["degrees"]) >= 9  # demo: |x| <= 8
        speed = copy_classes.speed_factor(rng)
        assert speed <= 0.7 or speed >= 1.6  # demo: 0.75 .. 1.5
    speech, music = ["w"], ["m"]
    names = set()
    for name in copy_classes.AUDIO_CLASSES:
        speed, _, effects = copy_classes.audio_effects(name, rng, speech, music)
        names |= {e["name"] for e in effects} | ({"speed"} if speed != 1.0 else set())
    assert set(audio_ops.NAMES) | {"speed"} == names  # every operation is used
    assert len(copy_classes.VISUAL_CLASSES) >= 20 and len(copy_classes.AUDIO_CLASSES) >= 10


def test_audio_operations_known_answers():
    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    low, high = np.sin(2 * np.pi * 440 * t), np.sin(2 * np.pi * 6000 * t)
    track = (0.3 * (low + high))[None].astype(np.float32)
    quiet = audio_ops.apply([{"name": "volume", "gain_db": -20.0}], track, None)
    np.testing.assert_allclose(quiet, track * 0.1, atol=1e-6)
    phone = audio_ops.apply([{"name": "mono8k", "rate": 8000}], np.repeat(track, 2, 0), None)
    spectrum = np.abs(np.fft.rfft(phone[0]))
    assert phone.shape == (2, AUDIO_RATE) and np.allclose(phone[0], phone[1])
    assert spectrum[6000] < 0.01 * spectrum[440]  # nothing left above 4 kHz
    other = np.random.default_rng(0).standard_normal(AUDIO_RATE // 4).astype(np.float32)
    mix = {"name": "mix", "others": ["a", "b"], "snr_db": 0.0, "seed": 1}
    mixed = audio_ops.apply([mix], track, lambda name: other)
    added = mixed[0] - track[0]
    assert abs(10 * np.log10(np.mean(track**2) / np.mean(added**2))) < 1.0  # 0 dB SNR
    stretched = audio_ops.tempo(track, 1.25, AUDIO_RATE // 2)
    assert stretched.shape == (1, AUDIO_RATE // 2)


def test_rotate_transform_known_answer():
    image = np.random.default_rng(0).random((9, 9, 3)).astype(np.float32)
    turned = transforms.apply({"name": "rotate", "degrees": 90.0}, image, 0.0)
    np.testing.assert_allclose(turned, np.rot90(image), atol=1e-5)


def test_build_writes_a_consistent_test_set_and_resumes(fake, tmp_path):
    cache, sources = fake
    out = tmp_path / "testset"
    config = TestSetConfig(
        **{**TINY.__dict__, "visual_classes": ("pip_host",), "audio_classes": ("tempo",)}
    )
    manifest = build_testset(out, cache=cache, config=config, sources=sources, verbose=False)
    videos = json.loads(manifest.read_text())["videos"]
    queries = json.loads((out / "queries.json").read_text())
    annotation = json.loads((out / "annotation.json").read_text())
    listed = dict(line.split("\t") for line in (out / "queries.txt").read_text().splitlines())
    assert set(listed) == set(queries) == set(annotation)
    assert {q["class"] for q in queries.values()} == {"pip_host", "tempo", "compilation"}
    assert (
        queries[next(q for q in queries if queries[q]["class"] == "pip_host")]["visual"][0]["pip"][
            "mode"
        ]
        == "host"
    )
    for line in (out / "videos.txt").read_text().splitlines():
        vid, path = line.split("\t")
        with av.open(path) as container:
            n = sum(1 for _ in container.decode(video=0))
        assert abs(n - videos[vid]["n_frames"]) <= 1
    licences = {f["licence"] for f in json.loads((out / "media.json").read_text())["files"]}
    assert licences <= {"GPL-2+", "CC-BY-SA-4.0", "CC0-1.0"}
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    build_testset(out, cache=cache, config=config, sources=sources, verbose=False)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()} == stamps


def test_per_class_tables():
    from ndvr_jax.evaluation import retrieval
    from ndvr_jax.jobs.testset_eval import by_class, markdown

    annotation = {"q1": {"ND": ["a"]}, "q2": {"ND": ["b"]}, "q3": {"DA": ["a"]}}
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.5, 0.5]], np.float32)  # q2 ranks b second
    with pytest.warns(UserWarning, match="no DSVR relevant"):  # q3 is an audio copy
        result = retrieval.evaluate((scores, ["q1", "q2", "q3"], ["a", "b"]), annotation, "DSVR")
    table = by_class(result, {"q1": "crop", "q2": "crop", "q3": "tempo"})
    assert table == {"crop": {"mAP": 0.75, "queries": 2}, "all": {"mAP": 0.75, "queries": 2}}
    text = markdown({"DSVR": {"global": table}})
    assert "| crop | 2 | 0.7500 |" in text and text.index("| crop") < text.index("| all")


def test_evaluate_a_built_test_set_end_to_end(tmp_path):
    """`testset evaluate` on a tiny built test set: per-class tables for the visual and audio
    systems and the collection search with the shipped calibration, in `results.md` (the build
    finds every package in the fake cache; evaluating runs subprocesses, so no `no_network`)."""
    from ndvr_jax.config_files import load_config_file
    from ndvr_jax.jobs.testset_eval import run_testset_evaluation

    cache = tmp_path / "cache"
    sources = make_fake_cache(cache)
    out = tmp_path / "testset"
    config = TestSetConfig(
        **{**TINY.__dict__, "visual_classes": ("crop",), "audio_classes": ("tempo",)}
    )
    build_testset(out, cache=cache, config=config, sources=sources, verbose=False)
    settings = load_config_file("configs/testset.py", "runlocal").evaluate
    tables = run_testset_evaluation(settings, str(out), str(tmp_path / "run"))
    assert {"global", "chamfer", "DML shipped", "regional (insets)"} <= set(tables["DSVR"])
    audio = {"AuSiL untrained", "AuSiL shipped", "landmarks", "AuSiL shipped + landmarks"}
    assert audio <= set(tables["DAVR"])
    assert (tmp_path / "run" / "landmarks" / "feature_files.txt").is_file()
    for systems in tables.values():
        for table in systems.values():
            assert 0.0 <= table["all"]["mAP"] <= 1.0 and table["all"]["queries"] > 0
    assert "visual: crop" in tables["DSVR"]["chamfer"]
    collection = json.loads((tmp_path / "run" / "collection" / "collection.json").read_text())
    queries = json.loads((out / "queries.json").read_text())
    assert collection["scored_queries"] == len(queries)
    assert set(collection["calibration_held_out"]) == {"visual", "audio"}
    assert all(0.0 <= v <= 1.0 for v in collection["mAP"].values())
    text = (tmp_path / "run" / "results.md").read_text()
    assert "### DSVR" in text and "### Collection search (shipped calibration)" in text
    assert (tmp_path / "run" / "collection" / "report.html").is_file()
