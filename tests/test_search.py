"""Global vectors, similarities and top-k search against numpy; sharded search on 8 fake devices."""

import json

import jax
import numpy as np
import pytest

from ndvr_jax import search, sharding


def numpy_global_vector(frames):
    def normalize(x):
        x = x - x.mean(axis=-1, keepdims=True)
        return x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-15)

    return normalize(normalize(frames).mean(axis=0))


def numpy_similarity(queries, database, metric):
    if metric == "cosine":
        unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
        return unit(queries) @ unit(database).T
    distance = np.linalg.norm(queries[:, None] - database[None], axis=-1)
    return 1 - distance / distance.max()


def numpy_top_k(similarity, k):
    index = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(similarity, index, 1), index


def test_global_vector_matches_numpy():
    rng = np.random.default_rng(0)
    frames = rng.normal(size=(3, 6, 16)).astype(np.float32)
    expected = np.stack([numpy_global_vector(f) for f in frames])
    np.testing.assert_allclose(search.global_vector(frames), expected, atol=1e-6)
    # Zero-padded batch: only the first num_frames frames of each video count.
    lengths = np.array([6, 2, 4])
    padded = frames * (np.arange(6)[None, :, None] < lengths[:, None, None])
    expected = np.stack([numpy_global_vector(f[:n]) for f, n in zip(frames, lengths, strict=True)])
    np.testing.assert_allclose(search.global_vector(padded, lengths), expected, atol=1e-6)


def test_global_vector_is_the_originals():
    # The original's utils.global_vector, in float64.
    frames = np.random.default_rng(1).normal(size=(6, 5)) + 2.0
    per_frame = frames - frames.mean(1, keepdims=True)
    per_frame /= np.sqrt((per_frame**2).sum(1, keepdims=True)) + 1e-15
    video = per_frame.mean(0)
    video = video - video.mean()
    video /= np.sqrt((video**2).sum()) + 1e-15
    np.testing.assert_allclose(search.global_vector(frames.astype(np.float32)), video, atol=1e-6)


def test_global_vectors_of_videos_of_any_length():
    rng = np.random.default_rng(2)
    videos = [rng.normal(size=(n, 12)).astype(np.float32) for n in (1, 3, 9, 17, 8, 40, 2)]
    want = np.stack([numpy_global_vector(v) for v in videos])
    np.testing.assert_allclose(search.global_vectors(videos), want, atol=1e-6)
    # A small element budget forces one video per batch; the result is the same.
    np.testing.assert_allclose(search.global_vectors(videos, max_elements=1), want, atol=1e-6)
    shapes = set()
    for rows, frames, mask in search.frame_batches(videos, max_elements=8 * 12 * 4):
        shapes.add(frames.shape)
        assert frames.shape[0] in (1, 2, 4) and frames.shape[1] in (8, 16, 32, 64)
        assert mask.sum(-1)[: len(rows)].tolist() == [len(videos[r]) for r in rows]
        assert not mask[len(rows) :].any()
    assert len(shapes) <= 4


@pytest.mark.parametrize("metric", ["cosine", "distance"])
def test_similarity_matrix_matches_numpy(metric):
    rng = np.random.default_rng(1)
    queries, database = rng.normal(size=(4, 8)), rng.normal(size=(9, 8))
    np.testing.assert_allclose(
        search.similarity_matrix(queries, database, metric),
        numpy_similarity(queries, database, metric),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        search.euclidean_distance(queries, database),
        np.linalg.norm(queries[:, None] - database[None], axis=-1),
        rtol=1e-5,
    )


@pytest.mark.parametrize("metric", ["cosine", "distance"])
@pytest.mark.parametrize("chunk_size, query_chunk_size", [(4, 2), (7, 5), (64, 64)])
def test_top_k_matches_brute_force(metric, chunk_size, query_chunk_size):
    rng = np.random.default_rng(2)
    queries, database = rng.normal(size=(5, 12)), rng.normal(size=(29, 12))
    result = search.search_top_k(
        queries,
        database,
        6,
        metric=metric,
        chunk_size=chunk_size,
        query_chunk_size=query_chunk_size,
    )
    similarity, index = numpy_top_k(numpy_similarity(queries, database, metric), 6)
    np.testing.assert_array_equal(result.index, index)
    np.testing.assert_allclose(result.similarity, similarity, atol=1e-5)


def tied_problem():
    """±1 vectors: exact arithmetic (unit vectors have entries ±1/2) and many exact ties."""
    rng = np.random.default_rng(3)
    queries = rng.choice([-1.0, 1.0], (6, 4)).astype(np.float32)
    database = rng.choice([-1.0, 1.0], (23, 4)).astype(np.float32)
    return queries, database


@pytest.mark.parametrize("metric", ["cosine", "distance"])
def test_sharded_search_equals_single_device_and_numpy(metric):
    queries, database = tied_problem()
    mesh = sharding.make_mesh()
    assert sharding.data_parallel_size(mesh) == 8
    single = search.search_top_k(queries, database, 9, metric=metric, chunk_size=2)
    sharded = search.search_top_k(
        queries, database, 9, metric=metric, chunk_size=2, query_chunk_size=4, mesh=mesh
    )
    similarity, index = numpy_top_k(numpy_similarity(queries, database, metric), 9)
    for result in (single, sharded):
        np.testing.assert_array_equal(result.index, index)
        np.testing.assert_allclose(result.similarity, similarity, atol=1e-6)


def test_sharded_search_on_one_axis_of_a_2d_mesh_and_tiny_database():
    rng = np.random.default_rng(4)
    queries, database = rng.normal(size=(3, 8)), rng.normal(size=(5, 8))
    mesh = jax.make_mesh((2, 4), ("replica", sharding.DATA_AXIS))
    result = search.search_top_k(queries, database, 5, metric="distance", mesh=mesh)
    similarity, index = numpy_top_k(numpy_similarity(queries, database, "distance"), 5)
    np.testing.assert_array_equal(result.index, index)
    np.testing.assert_allclose(result.similarity, similarity, atol=1e-5)


def test_search_rejects_bad_arguments():
    queries, database = np.ones((2, 3)), np.ones((4, 3))
    with pytest.raises(ValueError, match="k must be"):
        search.search_top_k(queries, database, 5)
    with pytest.raises(ValueError, match="metric"):
        search.search_top_k(queries, database, 2, metric="dot")
    with pytest.raises(ValueError, match=r"\[Q, D\]"):
        search.search_top_k(queries, np.ones((4, 2)), 2)
    with pytest.raises(ValueError, match="metric"):
        search.similarity_matrix(queries, database, "dot")


def test_similarity_json_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    queries, database = rng.normal(size=(3, 6)), rng.normal(size=(7, 6))
    query_ids, db_ids = ["qa", "qb", "qc"], [f"v{i}" for i in range(7)]
    result = search.search_top_k(queries, database, 4)
    sims = search.top_k_to_dict(result, query_ids, db_ids)
    assert list(sims) == query_ids and all(len(row) == 4 for row in sims.values())
    for q, query_id in enumerate(query_ids):
        for similarity, i in zip(result.similarity[q], result.index[q], strict=True):
            assert sims[query_id][db_ids[i]] == float(similarity)
    path = tmp_path / "out" / "similarities.json"
    search.save_similarities(path, sims)
    assert search.load_similarities(path) == sims
    # Dense matrix: non-finite entries are left out.
    matrix = np.array([[0.5, np.nan], [np.inf, -0.25]], np.float32)
    assert search.to_similarity_dict(matrix, ["a", "b"], ["x", "y"]) == {
        "a": {"x": 0.5},
        "b": {"y": -0.25},
    }
    with pytest.raises(ValueError, match="out of range"):
        search.to_similarity_dict(result.similarity, query_ids, db_ids[:2], result.index)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"q": {"v": "high"}}))
    with pytest.raises(ValueError, match="numbers"):
        search.load_similarities(bad)
