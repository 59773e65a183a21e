"""FAISS as the approximate first stage: exact when asked, good recall when approximate, and
saved indexes reused only while they hold the same rows."""

import numpy as np

from ndvr_jax import search
from ndvr_jax.collection.approximate import FaissIndex, resolve_spec


def clustered(n, d=16, clusters=40, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    return (centres[rng.integers(clusters, size=n)] + 0.3 * rng.normal(size=(n, d))).astype(
        np.float32
    )


def test_flat_is_exact_and_ivf_finds_most_neighbours(tmp_path):
    vectors, queries = clustered(4000), clustered(50, seed=1)
    ids = [f"v{i}" for i in range(len(vectors))]
    exact = search.DenseIndex(vectors).search(queries, 10)
    flat = FaissIndex.open_or_build(tmp_path, ids, vectors, "Flat").search(queries, 10)
    np.testing.assert_array_equal(flat.index, exact.index)
    np.testing.assert_allclose(flat.similarity, exact.similarity, atol=1e-5)
    ivf = FaissIndex.open_or_build(tmp_path, ids, vectors, "IVF32,Flat", nprobe=4).search(
        queries, 10
    )
    recall = np.mean(
        [len(set(a) & set(b)) / 10 for a, b in zip(ivf.index, exact.index, strict=True)]
    )
    assert 0.8 <= recall <= 1.0


def test_a_saved_index_is_reused_for_the_same_rows_and_rebuilt_for_others(tmp_path):
    vectors = clustered(300)
    ids = [f"v{i}" for i in range(len(vectors))]
    FaissIndex.open_or_build(tmp_path, ids, vectors, "Flat")
    saved = tmp_path / "faiss" / "Flat.faiss"
    stamp = saved.stat().st_mtime_ns
    again = FaissIndex.open_or_build(tmp_path, ids, vectors, "Flat")
    assert saved.stat().st_mtime_ns == stamp  # read back, not rebuilt
    top = again.search(vectors[:3], 1)
    np.testing.assert_array_equal(top.index[:, 0], [0, 1, 2])
    fewer = FaissIndex.open_or_build(tmp_path, ids[1:], vectors[1:], "Flat")  # one removed
    np.testing.assert_array_equal(fewer.search(vectors[1:4], 1).index[:, 0], [0, 1, 2])


def test_auto_spec_is_exact_for_small_collections_and_an_inverted_file_for_large():
    assert resolve_spec("auto", 9_999) == "Flat"
    assert resolve_spec("auto", 1_000_000) == "IVF4000,Flat"
    assert resolve_spec("HNSW32", 5) == "HNSW32"
