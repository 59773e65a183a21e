"""The collection index: catalogue transactions, shards, fusion and calibration, first-stage
search, duplicate groups, and build/add/remove/info/query end to end on the tiny demo."""

import json
import shutil
import subprocess

import numpy as np
import pytest
from flax import nnx

from ndvr_jax import search
from ndvr_jax.collection import build as build_lib
from ndvr_jax.collection.catalogue import Catalogue, CatalogueError, VideoRecord
from ndvr_jax.collection.codes import video_codes
from ndvr_jax.collection.fusion import (
    DEFAULT_CALIBRATION,
    Calibration,
    fit_calibration,
    fuse,
    load_calibrations,
    modality_calibrations,
)
from ndvr_jax.collection.report import matched_spans
from ndvr_jax.collection.shards import SHARD_DIR, load_vectors, write_shard
from ndvr_jax.config_files import load_config_file
from ndvr_jax.data.demo import build_demo_benchmark
from ndvr_jax.hashing import training as hashing_training
from ndvr_jax.hashing.codes import pack_bits
from ndvr_jax.hashing.model import HashingNet
from ndvr_jax.io.store import read_id_path_list, write_id_path_list
from ndvr_jax.jobs.query import default_query_config, duplicate_groups, run_query
from tests.test_triplets_cli import REPO, run_module


def record(video_id, shard=None, row=None, sha="x"):
    return VideoRecord(video_id, f"/v/{video_id}.mp4", 10, 1.0, sha + video_id, 3.0,
                       shard=shard, row=row)  # fmt: skip


def test_catalogue_commits_whole_transactions_and_shards_verify(tmp_path):
    catalogue = Catalogue(tmp_path, create=True)
    with catalogue.transaction():
        shard = write_shard(catalogue, {"global": np.eye(3, dtype=np.float32)})
        catalogue.put([record("a", shard, 0), record("b", shard, 2)])
    with pytest.raises(RuntimeError), catalogue.transaction():
        catalogue.put([record("c", shard, 1)])
        raise RuntimeError("killed")
    assert [r.id for r in catalogue.records()] == ["a", "b"]
    vectors = load_vectors(catalogue, catalogue.records())
    np.testing.assert_array_equal(vectors["global"], np.eye(3)[[0, 2]])
    assert catalogue.by_sha256() == {"xa": "a", "xb": "b"}
    path = tmp_path / SHARD_DIR / shard
    path.write_bytes(path.read_bytes()[:-7] + b"garbage")
    with pytest.raises(CatalogueError, match="corrupt"):
        load_vectors(catalogue, catalogue.records())
    path.unlink()
    with pytest.raises(CatalogueError, match="missing"):
        load_vectors(catalogue, catalogue.records())
    catalogue.close()
    with pytest.raises(CatalogueError, match="not an index"):
        Catalogue(tmp_path / "nothing")


def test_calibration_recovers_a_logistic_model_and_fusion_rules():
    rng = np.random.default_rng(0)
    scores = rng.uniform(0, 1, 20000)
    truth = Calibration(12.0, -7.0)
    labels = rng.uniform(size=scores.shape) < truth(scores)
    fitted = fit_calibration(scores, labels)
    assert fitted.slope == pytest.approx(12.0, rel=0.1)
    assert fitted.intercept == pytest.approx(-7.0, rel=0.1)
    assert fitted(np.array([fitted.threshold(0.5)]))[0] == pytest.approx(0.5, abs=1e-6)
    p_v, p_a = np.array([0.0, 0.5, 0.9]), np.array([1.0, 1.0, 0.0])
    np.testing.assert_allclose(fuse(p_v, p_a, "visual"), p_v)
    np.testing.assert_allclose(fuse(p_v, p_a, "audio"), p_a)
    np.testing.assert_allclose(fuse(p_v, p_a, "any"), [1.0, 1.0, 0.9])
    # a shared song alone (no picture evidence) is not a duplicate; it corroborates one
    np.testing.assert_allclose(fuse(p_v, p_a, "corroborate"), [0.0, 0.75, 0.9])
    np.testing.assert_allclose(fuse(p_v, None), p_v)
    with pytest.raises(ValueError, match="both classes"):
        fit_calibration(scores, np.zeros_like(scores))


def test_shipped_calibrations_and_the_one_for_landmarks():
    shipped = load_calibrations(DEFAULT_CALIBRATION)
    assert set(shipped) == {"visual", "audio", "audio+landmarks"}
    assert modality_calibrations(shipped, landmarks=True)["audio"] == shipped["audio+landmarks"]
    assert modality_calibrations(shipped, landmarks=False)["audio"] == shipped["audio"]
    older = {k: shipped[k] for k in ("visual", "audio")}  # a file fitted without landmarks
    assert modality_calibrations(older, landmarks=True)["audio"] == shipped["audio"]


def test_dense_index_is_resident_and_matches_numpy():
    rng = np.random.default_rng(1)
    database, queries = rng.normal(size=(300, 16)), rng.normal(size=(7, 16))
    index = search.DenseIndex(database, chunk_size=64)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    want = np.argsort(-(unit(queries) @ unit(database).T), axis=1, kind="stable")[:, :5]
    for _ in range(2):  # searched twice, prepared once
        np.testing.assert_array_equal(index.search(queries, 5).index, want)
    bf16 = search.DenseIndex(database, dtype="bfloat16").search(queries, 5)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(bf16.index, want, strict=True)])
    assert recall >= 0.8


def test_duplicate_groups_and_matched_spans():
    results = {
        "a": [{"id": "b", "copy": True}, {"id": "c", "copy": False}],
        "c": [{"id": "d", "copy": True}],
        "d": [{"id": "e", "copy": True}],
    }
    assert duplicate_groups(results) == [["c", "d", "e"], ["a", "b"]]
    rng = np.random.default_rng(2)
    source = rng.normal(size=(10, 64))
    query = np.concatenate([rng.normal(size=(3, 64)), source[4:8], rng.normal(size=(2, 64))])
    spans = matched_spans(query, source, np.arange(9.0), np.arange(10.0) * 2)
    assert spans == [(3.0, 6.0, 8.0, 14.0)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The tiny demo benchmark and an index of all its videos (pictures and sound)."""
    root = tmp_path_factory.mktemp("collection")
    build_demo_benchmark(root / "data", seed=0, size="tiny", verbose=False)
    config = load_config_file(REPO / "configs" / "index.py", "runlocal")
    summary = build_lib.add_videos(root / "index", root / "data" / "videos.txt", config)
    return root, summary


def copy_index(demo, tmp_path):
    shutil.copytree(demo[0] / "index", tmp_path / "index")
    return demo[0] / "data", tmp_path / "index"


def test_index_add_info_remove(demo, tmp_path):
    data, index = copy_index(demo, tmp_path)
    videos = read_id_path_list(data / "videos.txt")
    assert sorted(demo[1].added) == sorted(v for v, _ in videos) and not demo[1].failed
    copies = tmp_path / "more"
    copies.mkdir()
    shutil.copy(videos[0][1], copies / "same_bytes.mp4")
    again = build_lib.add_videos(index, data / "videos.txt")
    assert sorted(again.skipped) == sorted(v for v, _ in videos) and not again.added
    assert build_lib.add_videos(index, copies).duplicates == {"same_bytes": videos[0][0]}
    info = build_lib.index_info(index)
    assert info["videos"] == len(videos) and info["statuses"] == {"ok": len(videos)}
    assert info["global_dim"] == 2048 and info["bytes_per_video"]["global"] == 2048 * 4
    assert info["code_bits"] == 2048 and (index / "pca.npz").is_file()
    with pytest.raises(CatalogueError, match="other settings"):
        build_lib.add_videos(index, copies, load_config_file(REPO / "configs" / "index.py"))
    assert build_lib.remove_videos(index, [videos[0][0], "unknown"]) == 1
    assert build_lib.index_info(index)["videos"] == len(videos) - 1
    assert not (index / "visual" / f"{videos[0][0]}.npy").exists()
    assert not (index / "landmarks" / f"{videos[0][0]}.npy").exists()
    assert (index / "landmarks" / f"{videos[1][0]}.npy").is_file()


def test_an_index_from_before_an_option_existed_opens_with_it(demo, tmp_path):
    _, index = copy_index(demo, tmp_path)
    config = load_config_file(REPO / "configs" / "index.py", "runlocal")
    catalogue = Catalogue(index)
    older = catalogue.get_meta("settings")
    del older["extract"]["inset_border_sides"]  # as an index built before the option
    catalogue.set_meta("settings", older)
    catalogue.close()
    build_lib.open_index(index, config)[0].close()  # the new option at its default: agrees
    reopened = Catalogue(index)
    assert reopened.get_meta("settings")["extract"]["inset_border_sides"] == 2  # recorded now
    reopened.close()
    config.extract.inset_border_sides = 0  # a value the index was not built with
    with pytest.raises(CatalogueError, match="other settings"):
        build_lib.open_index(index, config)


def test_landmarks_add_their_score_to_the_audio_evidence(demo, tmp_path):
    """An index with landmarks scores audio as AuSiL + 0.5 x landmark score; without its
    `landmarks/` folder, as AuSiL alone; the hits are in the evidence."""
    data, index = copy_index(demo, tmp_path)
    config = default_query_config()
    everything = len(read_id_path_list(data / "videos.txt"))
    config.update(index=str(index), all_pairs=True, k=everything, rerank=everything)
    read = lambda out: json.loads((tmp_path / out / "results.json").read_text())
    run_query(_with(config, output_dir=str(tmp_path / "fused")))
    shutil.rmtree(index / "landmarks")
    run_query(_with(config, output_dir=str(tmp_path / "plain")))
    fused, plain = read("fused"), read("plain")
    hits = []
    for query, matches in fused.items():
        alone = {m["id"]: m for m in plain[query]}
        for match in matches:
            hits.append(match["landmarks"])
            assert alone[match["id"]]["landmarks"] == 0
            if match["audio"] is None:
                continue
            score = match["landmarks"] / (match["landmarks"] + 40.0)
            expected = alone[match["id"]]["audio"] + 0.5 * score
            assert match["audio"] == pytest.approx(expected, abs=1e-5)
    assert max(hits) > 20 and np.median(hits) < 10  # copies pile up hits, the rest do not
    # the offset of the aligned hits is where the copied sound sits in its source
    truth = {}
    for row in json.loads((data / "segments.json").read_text()):
        if "audio" in row["modality"]:
            truth.setdefault((row["query"], row["source"]), []).append(row)
    checked = [
        (m["audio_offset_s"], rows[0]["source_start"] - rows[0]["query_start"])
        for query, matches in fused.items()
        for m in matches
        if m["landmarks"] >= 20 and len(rows := truth.get((query, m["id"]), [])) == 1
    ]
    assert checked and all(abs(got - want) < 0.5 for got, want in checked), checked
    # one first-stage candidate, plus the 3 videos with the most hits that it missed
    shutil.copytree(demo[0] / "index" / "landmarks", index / "landmarks")
    run_query(_with(config, rerank=1, landmark_candidates=3, output_dir=str(tmp_path / "few")))
    for query, matches in read("few").items():
        assert len(matches) <= 4 and sum(m["first_stage"] is not None for m in matches) == 1
        picked = next(m["id"] for m in matches if m["first_stage"] is not None)
        others = [m["landmarks"] for m in fused[query] if m["id"] != picked]
        expected = [h for h in sorted(others, reverse=True)[:3] if h > 0]
        added = [m["landmarks"] for m in matches if m["first_stage"] is None]
        assert sorted(added, reverse=True) == expected


def _with(config, **changes):
    out = config.copy_and_resolve_references()
    out.update(changes)
    return out


def test_all_pairs_finds_the_annotated_copies(demo, tmp_path):
    data, index = demo[0] / "data", demo[0] / "index"
    annotation = json.loads((data / "annotation.json").read_text())
    config = default_query_config()
    config.update(index=str(index), all_pairs=True, k=8, output_dir=str(tmp_path / "out"))
    summary = run_query(config)
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert summary["queries"] == len(results) == len(read_id_path_list(data / "videos.txt"))
    database = {v for v, _ in read_id_path_list(data / "database.txt")}
    found, annotated = 0, 0
    for query, labels in annotation.items():
        near = set(labels.get("ND", [])) | set(labels.get("DS", []))
        if near:  # the best database match (other queries may copy the same source)
            best = next(m["id"] for m in results[query] if m["id"] in database)
            found, annotated = found + (best in near), annotated + 1
            assert {"visual", "audio", "p_visual", "p_audio"} <= results[query][0].keys()
            assert query not in [m["id"] for m in results[query]]
    assert annotated >= 4 and found >= 0.8 * annotated
    rows = (tmp_path / "out" / "results.csv").read_text().splitlines()
    assert rows[0].startswith("query,rank,id,probability") and len(rows) == 1 + 8 * len(results)
    groups = json.loads((tmp_path / "out" / "groups.json").read_text())
    assert summary["groups"] == len(groups)
    assert "landmark hits, sound at" in (tmp_path / "out" / "report.html").read_text()
    binary = config.copy_and_resolve_references()
    binary.update(first_stage="binary", output_dir=str(tmp_path / "binary"))
    run_query(binary)
    by_codes = json.loads((tmp_path / "binary" / "results.json").read_text())
    assert sum(by_codes[q][0]["id"] == results[q][0]["id"] for q in results) >= 0.8 * len(results)
    approximate = config.copy_and_resolve_references()
    approximate.update(first_stage="faiss", output_dir=str(tmp_path / "faiss"))
    run_query(approximate)  # "auto" is exact (Flat) at this size: the same ranking
    by_faiss = json.loads((tmp_path / "faiss" / "results.json").read_text())
    for q in results:
        assert [m["id"] for m in by_faiss[q]] == [m["id"] for m in results[q]]


def test_kill_during_add_leaves_a_consistent_index(demo, tmp_path, monkeypatch):
    data, index = demo[0] / "data", tmp_path / "index"
    config = load_config_file(REPO / "configs" / "index.py", "runlocal")
    config.audio = False
    entries = read_id_path_list(data / "database.txt")
    (tmp_path / "one.txt").write_text(f"{entries[0][0]}\t{entries[0][1]}\n")
    (tmp_path / "two.txt").write_text(f"{entries[1][0]}\t{entries[1][1]}\n")
    build_lib.add_videos(index, tmp_path / "one.txt", config)

    def killed(self, records):
        raise KeyboardInterrupt("kill during add")

    monkeypatch.setattr(Catalogue, "put", killed)
    with pytest.raises(KeyboardInterrupt):
        build_lib.add_videos(index, tmp_path / "two.txt")
    monkeypatch.undo()
    assert len(list((index / SHARD_DIR).glob("*.npz"))) == 2  # an orphan shard is left
    info = build_lib.index_info(index)  # opening removes it; the index is the committed one
    assert info["videos"] == 1 and len(list((index / SHARD_DIR).glob("*.npz"))) == 1
    assert build_lib.add_videos(index, tmp_path / "two.txt").added == [entries[1][0]]


def test_index_and_query_binaries(demo, tmp_path):
    data, index = copy_index(demo, tmp_path)
    built = run_module(
        "ndvr_jax.index", "build", "--rebuild", f"--index={index}",
        f"--videos={data / 'videos.txt'}", "--config=configs/index.py:runlocal",
    )  # fmt: skip
    assert built.returncode == 0, built.stderr[-2000:]
    assert "added" in built.stdout
    info = run_module("ndvr_jax.index", "info", f"--index={index}")
    assert json.loads(info.stdout)["statuses"] == {
        "ok": len(read_id_path_list(data / "videos.txt"))
    }
    query = read_id_path_list(data / "queries.txt")[0][1]
    queried = run_module("ndvr_jax.query", f"--index={index}", f"--output_dir={tmp_path}/q", query)
    assert queried.returncode == 0, queried.stderr[-2000:]
    assert len(json.loads((tmp_path / "q" / "results.json").read_text())) == 1
    bad = run_module("ndvr_jax.query", f"--index={tmp_path}/none", query)
    assert bad.returncode == 2 and "not an index" in bad.stderr and "Traceback" not in bad.stderr
    usage = run_module("ndvr_jax.index", "explode", f"--index={index}")
    assert usage.returncode != 0 and "build | add | remove | info" in usage.stderr


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="no chromium browser on this machine")
def test_report_renders_in_a_real_browser(demo, tmp_path):
    query = default_query_config()
    query.update(index=str(demo[0] / "index"), all_pairs=True, output_dir=str(tmp_path / "out"))
    summary = run_query(query)
    assert summary["groups"] >= 1
    page = tmp_path / "out" / "report.html"
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
               page.as_uri()]  # fmt: skip
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert dom.count('class="group"') == summary["groups"]
    assert dom.count("data:image/jpeg;base64") >= 4 and "<svg" in dom
    assert 'class="probability"' in dom
    assert "landmark hits, sound at" in dom  # the audio evidence of the landmarks
    shot = tmp_path / "report.png"
    subprocess.run([*command[:-2], f"--screenshot={shot}", "--window-size=1200,900",
                    page.as_uri()], capture_output=True, timeout=120)  # fmt: skip
    assert shot.stat().st_size > 10_000


def test_codes_from_a_hashing_model_index_and_query(demo, tmp_path):
    data = demo[0] / "data"
    workdir = tmp_path / "hashing"
    workdir.mkdir()
    model = HashingNet(2048, 64, 3, rngs=nnx.Rngs(0))
    hashing_training.save_model(workdir, model, dict(feature_dim=2048, num_bits=64, num_classes=3))
    videos = read_id_path_list(data / "videos.txt")[:4]
    listing = tmp_path / "videos.txt"
    write_id_path_list(listing, videos)
    config = load_config_file(REPO / "configs" / "index.py", "runlocal")
    config.update(codes=str(workdir), audio=False)
    build_lib.add_videos(tmp_path / "index", listing, config)
    assert build_lib.index_info(tmp_path / "index")["code_bits"] == 64
    frames = [np.load(tmp_path / "index" / "visual" / f"{v}.npy") for v, _ in videos]
    lengths = [len(f) for f in frames]
    padded = np.zeros((len(frames), max(lengths), 2048), np.float32)
    for i, f in enumerate(frames):
        padded[i, : len(f)] = f
    bits = model(padded, np.arange(max(lengths))[None] < np.array(lengths)[:, None]).bits
    expected = np.asarray(pack_bits(np.asarray(bits) >= 0.5))
    catalogue, _ = build_lib.open_index(tmp_path / "index")
    stored = load_vectors(catalogue, catalogue.records("ok"))["codes"]
    np.testing.assert_array_equal(stored, expected)
    query = default_query_config()
    query.update(index=str(tmp_path / "index"), first_stage="binary", k=2, rerank=2,
                 output_dir=str(tmp_path / "out"))  # fmt: skip
    run_query(query, [videos[1][1]])
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [m["id"] for m in next(iter(results.values()))][0] == videos[1][0]
    assert next(iter(results.values()))[0]["first_stage"] == 1.0  # its own code: distance 0
    with pytest.raises(ValueError, match="expects 2048-d frame features"):
        video_codes(str(workdir), [np.zeros((3, 16), np.float32)], np.zeros((1, 16)))
