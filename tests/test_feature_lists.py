"""Feature lists and frame-feature files: the original formats, and clear errors on bad input."""

import os

import numpy as np
import pytest

from ndvr_jax.data.feature_lists import (
    FeatureError,
    load_frame_features,
    pad_frame_batch,
    read_feature_list,
)


def test_reads_tab_and_space_separated_lists(tmp_path):
    (tmp_path / "feats").mkdir()
    text = (
        "23254771545e5d278548ba02d25d32add952b2a4\tfeats/a.npy\n"
        "\n"
        "# a comment\n"
        "vid_2 feats/with space.npy\r\n"
        f"vid_3\t{tmp_path}/abs.npy\n"
    )
    (tmp_path / "list.txt").write_text(text)
    files = read_feature_list(tmp_path / "list.txt")
    assert list(files) == ["23254771545e5d278548ba02d25d32add952b2a4", "vid_2", "vid_3"]
    assert files["vid_2"] == os.path.join(tmp_path, "feats", "with space.npy")
    assert files["vid_3"] == f"{tmp_path}/abs.npy"


@pytest.mark.parametrize(
    ("text", "message"),
    [("only_an_id\n", r"list\.txt:1: expected"), ("a\tx.npy\nb\ty.npy\na\tz.npy\n", ":3.*'a'")],
)
def test_malformed_lists_raise(tmp_path, text, message):
    (tmp_path / "list.txt").write_text(text)
    with pytest.raises(FeatureError, match=message):
        read_feature_list(tmp_path / "list.txt")


def test_missing_list_raises(tmp_path):
    with pytest.raises(FeatureError, match="does not exist"):
        read_feature_list(tmp_path / "nope.txt")


def test_loads_and_checks_frame_features(tmp_path):
    good = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float64)
    np.save(tmp_path / "good.npy", good)
    out = load_frame_features(tmp_path / "good.npy", "v1", expected_dim=4)
    assert out.dtype == np.float32 and out.shape == (5, 4)
    np.testing.assert_allclose(out, good, rtol=1e-6)

    cases = {
        "missing": (None, r"video 'v1': feature file .*missing\.npy' does not exist"),
        "flat": (np.ones(4), r"expected \[n_frames, D\].*shape \(4,\)"),
        "empty": (np.zeros((0, 4)), "holds no frames"),
        "wide": (np.ones((3, 5)), "5-d, expected 4-d"),
        "text": (np.array([["a", "b", "c", "d"]]), "non-real dtype"),
    }
    for name, (array, message) in cases.items():
        if array is not None:
            np.save(tmp_path / f"{name}.npy", array)
        with pytest.raises(FeatureError, match=message):
            load_frame_features(tmp_path / f"{name}.npy", "v1", expected_dim=4)
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(FeatureError, match="cannot read"):
        load_frame_features(tmp_path / "junk.npy", "v1")


def test_nan_and_inf_rows_are_reported_by_row(tmp_path):
    frames = np.ones((30, 3), np.float32)
    frames[[2, 7], 1] = np.nan
    frames[12:25, 0] = np.inf
    np.save(tmp_path / "bad.npy", frames)
    with pytest.raises(FeatureError, match=r"video 'abc': 15 of 30 .*rows 2, 7, 12, .*\.\.\.\)"):
        load_frame_features(tmp_path / "bad.npy", "abc")


def test_pad_frame_batch():
    videos = [np.ones((3, 2)), np.full((1, 2), 2.0), np.zeros((0, 2))]
    frames, mask = pad_frame_batch(videos)
    assert frames.shape == (3, 3, 2) and frames.dtype == np.float32
    np.testing.assert_array_equal(mask, [[1, 1, 1], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(frames[1], [[2, 2], [0, 0], [0, 0]])
    assert pad_frame_batch(videos, length=5)[0].shape == (3, 5, 2)
    with pytest.raises(ValueError, match="more than length=2"):
        pad_frame_batch(videos, length=2)
    with pytest.raises(FeatureError, match="different feature widths"):
        pad_frame_batch([np.ones((1, 2)), np.ones((1, 3))])
