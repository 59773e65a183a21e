import numpy as np
import pytest

from ndvr_jax.chamfer import chamfer_similarity


def numpy_chamfer(query: np.ndarray, video: np.ndarray) -> float:
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    return float((unit(query) @ unit(video).T).max(axis=1).mean())


def videos(rng, lengths, dim=6):
    return [rng.normal(size=(n, dim)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("max_cells", [64, 1 << 24])  # many tiny blocks, or one block
def test_chamfer_matches_numpy_for_any_lengths_and_block_size(max_cells):
    rng = np.random.default_rng(0)
    queries, database = videos(rng, [3, 17, 1, 9]), videos(rng, [5, 30, 2, 11, 8])
    got = chamfer_similarity(queries, database, max_cells=max_cells)
    want = np.array([[numpy_chamfer(q, d) for d in database] for q in queries])
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_copied_frames_score_one_and_order_of_videos_is_kept():
    rng = np.random.default_rng(1)
    database = videos(rng, [12, 20, 7])
    queries = [database[1][4:10], database[2][::-1]]
    got = chamfer_similarity(queries, database)
    np.testing.assert_allclose(got[0, 1], 1.0, atol=1e-5)
    np.testing.assert_allclose(got[1, 2], 1.0, atol=1e-5)
    assert got[0].argmax() == 1 and got[1].argmax() == 2


def test_chamfer_needs_videos():
    with pytest.raises(ValueError, match="at least one"):
        chamfer_similarity([], [np.ones((2, 3), np.float32)])
