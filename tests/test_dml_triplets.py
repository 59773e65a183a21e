"""Triplet generation against plain-numpy versions of the original's rules."""

import pickle

import numpy as np
import pytest

from ndvr_jax.data.datasets import VCDB, CCWebVideo, DatasetError, load_vcdb_pickle
from ndvr_jax.data.feature_lists import FeatureError, read_feature_list
from ndvr_jax.dml import triplets
from tests.test_triplets_cli import write_features


def _unit_rows(n, dim=8, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def _dist(a, b):
    return float(np.sqrt(((a.astype(np.float64) - b.astype(np.float64)) ** 2).sum()))


def reference_vcdb(features, pairs, overlaps, distractors, threshold, excluded):
    out = []
    for (i, j), (oi, oj) in zip(pairs, overlaps, strict=True):
        if not (oi > threshold and oj > threshold):
            continue
        d = _dist(features[i], features[j])
        for a, p in ((i, j), (j, i)):
            out += [
                [a, p, n]
                for n in distractors
                if n not in excluded and _dist(features[a], features[n]) < d
            ]
    return np.array(out, np.int64).reshape(-1, 3)


def reference_query_sets(features, sets, min_distance):
    out = []
    for pos, neg in sets:
        for qi in range(len(pos)):
            for pi in range(qi + 1, len(pos)):
                q, p = pos[qi], pos[pi]
                d = _dist(features[q], features[p])
                if d <= min_distance:
                    continue
                out += [[q, p, n] for n in neg if _dist(features[q], features[n]) < d]
                out += [[p, q, n] for n in neg if _dist(features[p], features[n]) < d]
    return np.array(out, np.int64).reshape(-1, 3)


def _feature_files(tmp_path, arrays):
    return read_feature_list(write_features(tmp_path, arrays))


def _original_global_vector(frames):
    x = frames.astype(np.float64)
    x = x - x.mean(1, keepdims=True)
    x = x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-15)
    x = x.mean(0, keepdims=True)
    x = x - x.mean(1, keepdims=True)
    return (x / (np.linalg.norm(x, axis=1, keepdims=True) + 1e-15))[0]


def test_dataset_global_features(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"v{i}": rng.normal(size=(i + 2, 6)).astype(np.float32) for i in range(4)}
    files = _feature_files(tmp_path, arrays)
    ids = ["", "v2", "v0", "v3", "v1"]
    got = triplets.dataset_global_features(ids, files, workers=2)
    assert got.shape == (5, 6) and got.dtype == np.float32
    np.testing.assert_array_equal(got[0], 0.0)  # CC_WEB placeholder row
    for row, video_id in enumerate(ids[1:], start=1):
        want = _original_global_vector(arrays[video_id])
        np.testing.assert_allclose(got[row], want, rtol=1e-6, atol=1e-7)

    with pytest.raises(FeatureError, match="'v9'"):
        triplets.dataset_global_features(["v0", "v9"], files)
    filled = triplets.dataset_global_features(["v0", "v9"], files, missing="zeros")
    np.testing.assert_array_equal(filled[1], 0.0)
    with pytest.raises(FeatureError, match="12-d, expected 6-d"):
        np.save(tmp_path / "v3.npy", np.ones((3, 12), np.float32))
        triplets.dataset_global_features(ids, files)
    bad = np.ones((3, 6), np.float32)
    bad[1, 2] = np.nan
    np.save(tmp_path / "v3.npy", bad)
    with pytest.raises(FeatureError, match=r"video 'v3'.*rows 1"):
        triplets.dataset_global_features(ids, files)


def test_pairwise_distances_in_padded_blocks():
    x, y = _unit_rows(13, seed=1), _unit_rows(37, seed=2)
    want = np.sqrt(((x[:, None].astype(np.float64) - y[None]) ** 2).sum(-1))
    np.testing.assert_allclose(triplets.pairwise_distances(x, y, chunk=8), want, atol=2e-6)
    np.testing.assert_allclose(triplets.pairwise_distances(x, y), want, atol=2e-6)


def test_pairs_closer_than_streams_candidates_and_compiles_once():
    features = _unit_rows(120, seed=3)
    anchors = _unit_rows(21, seed=4)
    thresholds = np.random.default_rng(5).uniform(0.8, 1.6, size=21)
    rows = np.arange(7, 120, 2)
    before = triplets._closer_block._cache_size()
    ai, ci = triplets.pairs_closer_than(
        anchors, thresholds, features, rows, anchor_chunk=8, candidate_chunk=16
    )
    # 3 anchor blocks x 4 candidate chunks, the last of each padded: one compiled shape
    assert triplets._closer_block._cache_size() - before <= 1
    d = np.sqrt(((anchors[:, None].astype(np.float64) - features[rows][None]) ** 2).sum(-1))
    want_a, want_c = np.nonzero(d < thresholds[:, None])
    np.testing.assert_array_equal(ai, want_a)
    np.testing.assert_array_equal(ci, want_c)


def _vcdb_fixture(n_core=10, n_distractors=60):
    features = _unit_rows(n_core + n_distractors, seed=6)
    pairs = np.array([[0, 1], [2, 3], [4, 5], [1, 6], [7, 8], [9, 0]])
    overlaps = np.array([[0.9, 0.95], [0.5, 0.9], [0.81, 0.99], [1.0, 1.0], [0.9, 0.8], [1, 1]])
    distractors = np.arange(n_core, n_core + n_distractors)
    return features, pairs, overlaps, distractors


def test_vcdb_rule_matches_reference():
    features, pairs, overlaps, distractors = _vcdb_fixture()
    dataset = VCDB([f"v{i}" for i in range(len(features))], pairs, overlaps, distractors)
    excluded = (12, 30, 31)
    got = triplets.vcdb_triplets(
        features, dataset, excluded=excluded, anchor_chunk=8, candidate_chunk=16
    )
    want = reference_vcdb(features, pairs, overlaps, distractors, 0.8, excluded)
    assert len(want) > 20
    np.testing.assert_array_equal(got, want)
    with pytest.raises(DatasetError, match="features have shape"):
        triplets.vcdb_triplets(features[:-1], dataset)


def test_vcdb_end_to_end_from_original_files(tmp_path):
    features, pairs, overlaps, distractors = _vcdb_fixture(n_distractors=20)
    ids = [f"video{i:03d}" for i in range(len(features))]
    rng = np.random.default_rng(7)
    frames = {v: features[i] + 0.1 * rng.normal(size=(4, 8)) for i, v in enumerate(ids)}
    files = _feature_files(tmp_path, frames)
    original = {
        "index": ids,
        "video_pairs": [
            {"videos": list(map(int, p)), "overlap": list(map(float, o))}
            for p, o in zip(pairs, overlaps, strict=True)
        ],
    }
    (tmp_path / "vcdb.pickle").write_bytes(pickle.dumps(original, protocol=2))
    dataset = load_vcdb_pickle(tmp_path / "vcdb.pickle", core_size=10)
    vectors = triplets.dataset_global_features(dataset.video_ids, files)
    got = triplets.vcdb_triplets(vectors, dataset, excluded=(), candidate_chunk=8)
    want = reference_vcdb(vectors, pairs, overlaps, distractors, 0.8, ())
    np.testing.assert_array_equal(got, want)
    paths = triplets.save_triplet_outputs(tmp_path / "out", "vcdb", vectors, got)
    assert [p.name for p in paths] == ["vcdb_features.npy", "vcdb_triplets.npy"]
    np.testing.assert_array_equal(np.load(paths[0]), vectors)
    saved = np.load(paths[1])
    assert saved.dtype == np.int64 and saved.shape == (len(want), 3)
    np.testing.assert_array_equal(saved, want)


def test_cc_web_rule_matches_reference():
    features = _unit_rows(40, seed=8)
    features[6] = features[5] + 0.01  # a near-identical positive pair: skipped (< 0.1)
    features[6] /= np.linalg.norm(features[6])
    labels = ["E", "S", "V", "M", "L", "X", "-1"]
    rng = np.random.default_rng(9)
    ground_truth = [
        {v: labels[rng.integers(len(labels))] for v in range(1, 20)},
        {v: labels[rng.integers(len(labels))] for v in range(20, 40)},
    ]
    ground_truth[0].update({5: "E", 6: "S"})
    dataset = CCWebVideo(
        ["", *(f"{q}_{i}_Y" for q in (1, 2) for i in range(1, 20))] + ["2_20_Y"],
        [1, 20],
        ground_truth,
        [set(), set()],
    )
    sets = triplets.cc_web_query_sets(dataset)
    assert sets[0][0] == [v for v, lab in ground_truth[0].items() if lab in "ESVML"]
    got = triplets.query_set_triplets(features, sets, chunk=8)
    want = reference_query_sets(features, sets, 0.1)
    assert len(want) > 50
    np.testing.assert_array_equal(got, want)
    assert not ((got[:, 0] == 5) & (got[:, 1] == 6)).any()


def test_annotation_and_group_query_sets():
    index = {f"v{i}": i for i in range(8)}
    annotation = {
        "v0": {"ND": ["v1", "v2"], "DS": ["v3"], "IS": ["v4", "v1"], "XX": ["v7"]},
        "v5": {"DS": ["v6"], "IS": ["v7"]},
    }
    sets = triplets.annotation_query_sets(annotation, index, ("ND", "DS"), ("IS",))
    assert sets == [([0, 1, 2, 3], [4]), ([5, 6], [7])]
    with pytest.raises(DatasetError, match="'v9'"):
        triplets.annotation_query_sets({"v0": {"ND": ["v9"]}}, index, ("ND",), ())

    groups = np.array([0, 1, 0, -1, 1, 2, 0])
    sets = triplets.group_query_sets(groups, rows=np.array([0, 1, 2, 3, 4]))
    assert [(list(p), list(n)) for p, n in sets] == [([0, 2], [1, 3, 4]), ([1, 4], [0, 2, 3])]
    features = _unit_rows(7, seed=10)
    got = triplets.query_set_triplets(features, sets)
    np.testing.assert_array_equal(got, reference_query_sets(features, sets, 0.1))


def test_save_rejects_bad_triplets_and_writes_empty(tmp_path):
    features = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="outside"):
        triplets.save_triplet_outputs(tmp_path, "x", features, np.array([[0, 1, 3]]))
    paths = triplets.save_triplet_outputs(tmp_path, "x", features, np.zeros((0, 3), np.int64))
    assert np.load(paths[1]).shape == (0, 3)
