"""Audio copy localisation from landmarks: a query made of spans of two database sounds between
foreign ones gives those spans (sources, query and source times), a foreign sound and a shared
snippet shorter than `min_seconds` give none, and the `localize` binary writes and scores them."""

import json

import numpy as np
import pytest

from ndvr_jax.io.audio import encode_audio
from ndvr_jax.landmarks.fingerprint import fingerprint
from ndvr_jax.landmarks.matching import LandmarkIndex
from ndvr_jax.landmarks.spans import SpanRule, copied_spans
from tests.test_landmarks import RATE, melody
from tests.test_triplets_cli import run_module

SOURCES = [melody(s, 10.0) for s in range(4)]


def span(x: np.ndarray, start: float, end: float) -> np.ndarray:
    return x[int(start * RATE) : int(end * RATE)]


def compilation() -> np.ndarray:
    """foreign 0-2 s | source 1 at 3-7 s -> 2-6 s | foreign 6-8 s | source 2 at 1-5 s -> 8-12 s"""
    return np.concatenate([
        span(melody(90), 0, 2), span(SOURCES[1], 3, 7), span(melody(91), 0, 2),
        span(SOURCES[2], 1, 5),
    ])  # fmt: skip


def test_a_compilation_gives_its_two_spans():
    index = LandmarkIndex([fingerprint(x) for x in SOURCES])
    found = copied_spans(fingerprint(compilation()), index)
    assert sorted(s.source for s in found) == [1, 2]
    expected = {1: (2.0, 6.0, 3.0, 7.0), 2: (8.0, 12.0, 1.0, 5.0)}
    for s in found:
        q0, q1, s0, s1 = expected[s.source]
        assert s.query_start == pytest.approx(q0, abs=0.3) and s.query_end == pytest.approx(
            q1, abs=0.5
        )
        assert s.source_start - s.query_start == pytest.approx(s0 - q0, abs=0.05)  # the offset
        assert 0.5 < s.score < 1.0


def test_foreign_sound_and_short_snippets_give_nothing():
    index = LandmarkIndex([fingerprint(x) for x in SOURCES])
    assert copied_spans(fingerprint(melody(77, 8.0)), index) == []
    snippet = np.concatenate(
        [span(melody(78), 0, 3), span(SOURCES[0], 4, 5), span(melody(79), 0, 3)]
    )
    assert copied_spans(fingerprint(snippet), index) == []  # 1 s < min_seconds
    loose = SpanRule(min_seconds=0.5, min_hits=5)
    assert [s.source for s in copied_spans(fingerprint(snippet), index, loose)] == [0]


def test_localize_binary_writes_and_scores_audio_segments(tmp_path):
    names = {f"db{i}": x for i, x in enumerate(SOURCES)}
    names["q0"], names["q1"] = compilation(), melody(77, 8.0)
    for name, x in names.items():
        encode_audio(tmp_path / f"{name}.wav", x, RATE)
    (tmp_path / "videos.txt").write_text("".join(f"{n}\t{tmp_path / n}.wav\n" for n in names))
    listing, marks = tmp_path / "videos.txt", tmp_path / "m"
    out = run_module("ndvr_jax.extract", "--config=configs/extract.py", "--config.mode=landmarks",
                     f"--video_list={listing}", f"--output_dir={marks}")  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    rows = (tmp_path / "m" / "feature_files.txt").read_text().splitlines(keepends=True)
    (tmp_path / "m" / "q.txt").write_text("".join(r for r in rows if r.startswith("q")))
    (tmp_path / "m" / "d.txt").write_text("".join(r for r in rows if r.startswith("db")))
    truth = [
        {"query": "q0", "query_start": 2.0, "query_end": 6.0, "source": "db1",
         "source_start": 3.0, "source_end": 7.0, "modality": "audio"},
        {"query": "q0", "query_start": 8.0, "query_end": 12.0, "source": "db2",
         "source_start": 1.0, "source_end": 5.0, "modality": "video+audio"},
    ]  # fmt: skip
    (tmp_path / "truth.json").write_text(json.dumps(truth))
    args = ["--config=configs/localize_audio.py", f"--queries={tmp_path / 'm' / 'q.txt'}",
            f"--database={tmp_path / 'm' / 'd.txt'}", f"--config.output_dir={tmp_path / 'loc'}",
            f"--config.ground_truth={tmp_path / 'truth.json'}"]  # fmt: skip
    run = run_module("ndvr_jax.localize", *args)
    assert run.returncode == 0, run.stderr[-2000:]
    summary = json.loads((tmp_path / "loc" / "summary.json").read_text())
    scores = summary["scores"]["all"]["landmarks"]
    assert scores["vcsl"]["f1"] > 0.8 and scores["negative_queries_with_segments"] == 0
    segments = json.loads((tmp_path / "loc" / "segments_landmarks.json").read_text())
    assert sorted(s["source"] for s in segments) == ["db1", "db2"]
    csv = (tmp_path / "loc" / "matches_landmarks.csv").read_text().splitlines()
    assert csv[0].startswith("query_id,ref_id") and len(csv) == 3
    assert (tmp_path / "loc" / "timelines" / "q0.png").stat().st_size > 1000
    bad = run_module("ndvr_jax.localize", *args[:1], f"--queries={tmp_path}/none.txt", args[2])
    assert bad.returncode == 2 and "none.txt" in bad.stderr and "Traceback" not in bad.stderr
