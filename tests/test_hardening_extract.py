"""Extraction on bad input and reruns: stale features, bad ids, odd paths, empty lists."""

import logging
import os
import re
import threading
import time

import numpy as np
import pytest
from flax import nnx

from configs import extract as extract_config
from ndvr_jax import sharding
from ndvr_jax.features import extract
from ndvr_jax.features.batching import extract_list, extract_to_store
from ndvr_jax.features.encoder import BatchEncoder
from ndvr_jax.features.visual import visual_settings
from ndvr_jax.io import video
from ndvr_jax.io.prefetch import StalledRead, prefetch_chunks
from ndvr_jax.io.store import FeatureStore, read_id_path_list, write_id_path_list
from tests.media import write_test_video
from tests.test_features_batching import TinyNet, mean_pool


@pytest.fixture(scope="module")
def encoder():
    return BatchEncoder(TinyNet(nnx.Rngs(0)), mean_pool, sharding.make_mesh(2), batch_size=4)


def run(entries, encoder, store, settings, fps=1.0):
    decode = lambda path: video.decode_video(path, fps=fps, size=16)
    describe = lambda decoded: {"timestamps": decoded.timestamps.tolist()}
    return extract_to_store(entries, decode, encoder, store, describe, settings=settings)


def test_rerun_with_other_settings_or_a_changed_source_extracts_again(tmp_path, encoder):
    paths = [tmp_path / f"v{i}.mp4" for i in range(2)]
    for path in paths:
        write_test_video(path, seconds=2.0, fps=5)
    entries = [(f"v{i}", str(p)) for i, p in enumerate(paths)]
    store = FeatureStore(tmp_path / "features")
    settings = {"mode": "visual", "fps": 1.0, "resize": "pad"}
    assert run(entries, encoder, store, settings).done == ["v0", "v1"]
    assert run(entries, encoder, store, settings).skipped == ["v0", "v1"]

    again = run(entries, encoder, store, {**settings, "fps": 2.0}, fps=2.0)
    assert again.done == ["v0", "v1"] and again.skipped == []
    assert again.stale == {"v0": "fps changed", "v1": "fps changed"}
    assert "extracted 2 (re-extracted 2: fps changed: 2)" in str(again)
    assert store.load("v0").shape[0] == 4 and store.load_meta("v0")["fps"] == 2.0

    write_test_video(paths[1], seconds=3.0, fps=5)  # same name, new content
    os.utime(paths[1], ns=(1, 1))
    third = run(entries, encoder, store, {**settings, "fps": 2.0}, fps=2.0)
    assert third.skipped == ["v0"] and third.stale == {"v1": "source_file changed"}
    assert store.load("v1").shape[0] == 6


def test_a_gone_source_keeps_its_stored_features(tmp_path, encoder):
    path = tmp_path / "v.mp4"
    write_test_video(path, seconds=1.0, fps=5)
    store = FeatureStore(tmp_path / "features")
    run([("v", str(path))], encoder, store, {"fps": 1.0})
    path.unlink()
    again = run([("v", str(path))], encoder, store, {"fps": 1.0})
    assert again.skipped == ["v"] and not again.failed


@pytest.mark.parametrize(
    ("key", "value"),
    [("fps", 2.0), ("resize", "crop"), ("dtype", "bfloat16"), ("backbone", "vgg16"),
     ("size", 32), ("weights", None)],
)  # fmt: skip
def test_visual_settings_record_every_setting(key, value):
    config = extract_config.get_config("runlocal")
    before = visual_settings(config)
    config[key] = value
    after = visual_settings(config)
    assert [k for k in before if before[k] != after[k]] == [key]


def test_weights_file_contents_are_part_of_the_settings(tmp_path):
    config = extract_config.get_config("runlocal")
    config.weights = str(tmp_path / "w.npz")
    np.savez(config.weights, a=np.zeros(3))
    before = visual_settings(config)
    np.savez(config.weights, a=np.zeros(4))
    os.utime(config.weights, ns=(5, 5))
    assert visual_settings(config)["weights_file"] != before["weights_file"]


@pytest.mark.parametrize("bad_id", ["a b", "../up", "..", "x/y"])
def test_bad_ids_stop_the_run_before_anything_is_written(tmp_path, bad_id):
    write_test_video(tmp_path / "v.mp4", seconds=1.0, fps=5)
    lines = ["good v.mp4", "other\tv.mp4", f"{bad_id}\tv.mp4"]
    (tmp_path / "videos.txt").write_text("\n".join(lines) + "\n")
    config = extract_config.get_config("runlocal")
    config.layout = "ausil"  # where `..` would have escaped the store
    with pytest.raises(ValueError, match=rf"videos.txt:3: video id '{re.escape(bad_id)}'"):
        extract(config, str(tmp_path / "videos.txt"), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists() and not (tmp_path / "wlaf.npz").exists()


def test_empty_id_and_relative_lines_are_named(tmp_path):
    (tmp_path / "videos.txt").write_text("ok a.mp4\n\t b.mp4\n")
    with pytest.raises(ValueError, match=r"videos.txt:2: expected '<id> <path>'"):
        read_id_path_list(tmp_path / "videos.txt", FeatureStore.check_id)


def test_non_utf8_paths_are_read_and_written_back_as_their_bytes(tmp_path, encoder, monkeypatch):
    # pytest-xdist cannot send captured log lines holding undecodable bytes back to the main
    # process, so this test's own log lines (which name those files) are not captured.
    monkeypatch.setattr(logging.getLogger("absl"), "disabled", True)
    name = os.fsdecode(b"caf\xe9.mp4")
    write_test_video(tmp_path / name, seconds=1.0, fps=5)
    (tmp_path / "videos.txt").write_bytes(b"v\tcaf\xe9.mp4\nw\tgone\xff.mp4\n")
    entries = read_id_path_list(tmp_path / "videos.txt", FeatureStore.check_id)
    assert entries[0] == ("v", os.path.join(str(tmp_path), name))
    store = FeatureStore(tmp_path / "features")
    summary = run(entries, encoder, store, {})
    assert summary.done == ["v"] and summary.failed == {"w": "missing"}
    assert b"gone\xff.mp4" in (tmp_path / "features" / "failures.tsv").read_bytes()
    write_id_path_list(tmp_path / "copy.txt", entries)
    assert (tmp_path / "copy.txt").read_bytes() == os.fsencode(
        "".join(f"{v}\t{p}\n" for v, p in entries)
    )


def test_an_empty_list_leaves_an_existing_store_as_it_was(tmp_path, caplog):
    store = FeatureStore(tmp_path / "features")
    listed = store.write_list(["a", "b"])
    before = listed.read_bytes()
    (tmp_path / "empty.txt").write_text("# nothing yet\n")
    summary = extract(extract_config.get_config("runlocal"), str(tmp_path / "empty.txt"),
                      str(store.root))  # fmt: skip
    assert (summary.done, summary.skipped, summary.failed) == ([], [], {})
    assert listed.read_bytes() == before
    assert "lists no videos" in caplog.text


class CountingStream:
    """`chunks()` of `n` chunks of 4 frames; counts frames made; fails after them if asked."""

    made = 0

    def __init__(self, n: int, fail: bool = False):
        self.n, self.fail = n, fail

    def chunks(self):
        for i in range(self.n):
            CountingStream.made += 4
            yield np.full((4, 16, 16, 3), i % 250, np.uint8)
        if self.fail:
            raise video.VideoDecodeError("truncated", "frames end early")


def test_frames_in_memory_do_not_grow_with_the_length_of_a_video(tmp_path, encoder):
    encoded, ahead = [0], []
    encode_batch = encoder.encode_batch

    def counting_encode(images):
        encoded[0] += len(images)
        ahead.append(CountingStream.made - encoded[0])
        return encode_batch(images)

    encoder.encode_batch = counting_encode
    try:
        lengths = {"long": 200, "cut": 30, "short": 3}
        streams = {"long": CountingStream(200), "cut": CountingStream(30, fail=True),
                   "short": CountingStream(3)}  # fmt: skip
        store = FeatureStore(tmp_path / "features")
        entries = [(v, v) for v in streams]
        summary = extract_to_store(entries, streams.get, encoder, store, lambda s: {})
    finally:
        encoder.encode_batch = encode_batch
    assert summary.done == ["long", "short"] and summary.failed == {"cut": "truncated"}
    assert store.load("long").shape[0] == 4 * lengths["long"]
    assert store.load("short").shape[0] == 12 and not store.is_complete("cut")
    # made but not yet encoded: a few chunks (queue depth, buffered items), not 800 frames
    assert max(ahead) <= 4 * 4 * (2 + 1) + encoder.batch_size


def test_streamed_frames_give_the_features_of_whole_videos(tmp_path, encoder):
    paths = []
    for i, seconds in enumerate([3.0, 1.0, 5.0]):
        paths.append(tmp_path / f"v{i}.mp4")
        write_test_video(paths[-1], seconds=seconds, fps=5)
    entries = [(f"v{i}", str(p)) for i, p in enumerate(paths)]
    whole = FeatureStore(tmp_path / "whole")
    streamed = FeatureStore(tmp_path / "streamed")
    describe = lambda decoded: {"timestamps": list(decoded.timestamps), "codec": decoded.codec}
    decode = lambda path: video.decode_video(path, fps=2.0, size=16)
    stream = lambda path: video.VideoStream(path, fps=2.0, size=16, chunk_frames=3)
    extract_to_store(entries, decode, encoder, whole, describe)
    extract_to_store(entries, stream, encoder, streamed, describe)
    for video_id, _ in entries:
        np.testing.assert_array_equal(streamed.load(video_id), whole.load(video_id))
        assert streamed.load_meta(video_id) == whole.load_meta(video_id)


class HangingStream:
    """Chunks of a file whose read blocks (a hung mount) until `release` is set."""

    def __init__(self, release):
        self.release = release

    def chunks(self):
        self.release.wait()
        yield np.zeros((4, 16, 16, 3), np.uint8)


def test_a_read_that_never_returns_is_abandoned_and_the_rest_go_on(tmp_path, encoder):
    release = threading.Event()
    paths = {}
    for name in ("a", "b"):
        paths[name] = tmp_path / f"{name}.mp4"
        write_test_video(paths[name], seconds=1.0, fps=5)
    hung = tmp_path / "hung.mp4"
    hung.write_bytes(b"a regular file on a mount that stopped answering")
    videos = tmp_path / "videos.txt"
    entries = [("a", str(paths["a"])), ("hung", str(hung)), ("b", str(paths["b"]))]
    write_id_path_list(videos, entries)
    config = extract_config.get_config()
    config.read_timeout_s = 0.5
    config.num_workers = 1  # the abandoned read must give its worker to the next file

    def load(path):
        if path == str(hung):
            return HangingStream(release)
        return video.decode_video(path, fps=1.0, size=16)

    try:
        started = time.monotonic()
        summary = extract_list(config, str(videos), str(tmp_path / "features"), layout="ndvr-dml",
                               make_encoder=lambda mesh: encoder, load=load,
                               describe=lambda loaded: {})  # fmt: skip
        elapsed = time.monotonic() - started
    finally:
        release.set()
    assert summary.done == ["a", "b"] and summary.failed == {"hung": "timeout"}
    assert elapsed < 30  # not a timing assertion on speed: it must not wait for the hung read
    failures = (tmp_path / "features" / "failures.tsv").read_text().splitlines()
    assert failures == [f"hung\t{hung}\ttimeout\tno data for 0.5 s: the read was abandoned"]
    listed = read_id_path_list(tmp_path / "features" / "feature_files.txt")
    assert [v for v, _ in listed] == ["a", "b"]


def test_prefetch_keeps_order_and_reports_a_stalled_item_where_it_is_read():
    release = threading.Event()

    def chunks(item):
        if item == 2:
            release.wait()
        yield from (f"{item}.{k}" for k in range(3))

    got = {}
    try:
        for item, stream in prefetch_chunks(chunks, range(5), num_workers=2, stall_timeout=0.3):
            try:
                got[item] = list(stream)
            except StalledRead as e:
                got[item] = e.reason
    finally:
        release.set()
    assert got == {0: ["0.0", "0.1", "0.2"], 1: ["1.0", "1.1", "1.2"], 2: "timeout",
                   3: ["3.0", "3.1", "3.2"], 4: ["4.0", "4.1", "4.2"]}  # fmt: skip
