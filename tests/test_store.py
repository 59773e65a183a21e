"""Feature store and list files."""

import json

import numpy as np
import pytest

from ndvr_jax.io.store import FeatureStore, read_id_path_list, write_id_path_list


def test_list_reads_tabs_spaces_and_relative_paths(tmp_path):
    (tmp_path / "videos.txt").write_text("a\tdir/a b.mp4\n# comment\n\nb /abs/b.mp4\n")
    entries = read_id_path_list(tmp_path / "videos.txt")
    assert entries == [("a", str(tmp_path / "dir/a b.mp4")), ("b", "/abs/b.mp4")]
    write_id_path_list(tmp_path / "out.txt", entries)
    assert read_id_path_list(tmp_path / "out.txt") == entries


@pytest.mark.parametrize(("text", "match"), [("lonely\n", "expected"), ("a x\na y\n", "twice")])
def test_list_errors_name_the_line(tmp_path, text, match):
    (tmp_path / "l.txt").write_text(text)
    with pytest.raises(ValueError, match=match):
        read_id_path_list(tmp_path / "l.txt")


@pytest.mark.parametrize("layout", ["ndvr-dml", "ausil"])
def test_write_load_and_completion(tmp_path, layout):
    store = FeatureStore(tmp_path, layout)
    features = np.random.default_rng(0).normal(size=(5, 7)).astype(np.float32)
    assert not store.is_complete("v1")
    store.write("v1", features, {"timestamps": [0, 1, 2, 3, 4]})
    assert store.is_complete("v1")
    np.testing.assert_array_equal(store.load("v1"), features)
    assert store.load_meta("v1")["shape"] == [5, 7]
    if layout == "ausil":
        assert (tmp_path / "v1" / "wlaf.npz").exists()
    assert not list(tmp_path.rglob("*.tmp"))


def test_half_written_video_is_not_trusted(tmp_path):
    store = FeatureStore(tmp_path)
    store.write("v", np.ones((4, 3)), {})
    np.save(tmp_path / "v.npy", np.ones((2, 3)))  # features replaced, sidecar stale
    assert not store.is_complete("v")
    meta = json.loads((tmp_path / "v.json").read_text())
    (tmp_path / "v.json").write_text(json.dumps(meta)[:-3])  # corrupt sidecar
    assert not store.is_complete("v")


def test_ids_must_be_file_names(tmp_path):
    with pytest.raises(ValueError, match="slashes"):
        FeatureStore(tmp_path).feature_path("../evil")
