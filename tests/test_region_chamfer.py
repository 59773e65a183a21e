"""Region Chamfer similarity against numpy, and a picture-in-picture case built by hand."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax.backbones import regional_mac
from ndvr_jax.chamfer import chamfer_similarity
from ndvr_jax.regional.similarity import FRAME_SIMILARITIES, region_chamfer_similarity


def numpy_region_chamfer(query: np.ndarray, video: np.ndarray, mode: str, margin=0.0) -> float:
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    sim = np.einsum("trd,sud->tsru", unit(query), unit(video))  # [T, S, R, U]
    if mode == "visil":
        frames = sim.max(-1).mean(-1)
    elif mode == "symmetric":
        frames = 0.5 * (sim.max(-1).mean(-1) + sim.max(-2).mean(-1))
    else:
        regions = np.maximum(sim[..., 1:, 0].max(-1), sim[..., 0, 1:].max(-1))
        frames = np.maximum(sim[..., 0, 0], regions - margin)
    return float(frames.max(axis=1).mean())


def videos(rng, lengths, regions=4, dim=5):
    return [rng.normal(size=(n, regions, dim)).astype(np.float32) for n in lengths]


@pytest.mark.parametrize("mode", FRAME_SIMILARITIES)
@pytest.mark.parametrize("max_cells", [64, 1 << 24])  # many tiny masked blocks, or one block
def test_matches_numpy_for_any_lengths(mode: str, max_cells: int) -> None:
    rng = np.random.default_rng(0)
    queries, database = videos(rng, [3, 12, 1]), videos(rng, [5, 20, 2, 9])
    got = region_chamfer_similarity(queries, database, mode, max_cells, margin=0.1)
    want = [[numpy_region_chamfer(q, d, mode, 0.1) for d in database] for q in queries]
    assert got.shape == (3, 4)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_one_region_is_frame_chamfer() -> None:
    rng = np.random.default_rng(1)
    queries, database = videos(rng, [4, 9], regions=1), videos(rng, [6, 3, 10], regions=1)
    want = chamfer_similarity([q[:, 0] for q in queries], [d[:, 0] for d in database])
    for mode in FRAME_SIMILARITIES:
        got = region_chamfer_similarity(queries, database, mode)
        np.testing.assert_allclose(got, want, atol=1e-5)


def _frame(pattern: np.ndarray, inset: np.ndarray | None = None) -> np.ndarray:
    """A 6x6 activation map filled with `pattern` (alternating rows), `inset` in the top-left
    2x2 cell of the 3x3 grid."""
    a = np.tile(pattern[np.arange(6) % len(pattern)][:, None], (1, 6, 1)).astype(np.float32)
    if inset is not None:
        a[:2, :2] = inset[np.arange(2) % len(inset)][:, None]
    return a


def test_small_inset_matches_regionally_but_not_as_whole_frame() -> None:
    eye = np.eye(4, dtype=np.float32)
    source = _frame(eye[:2])  # channels 0 and 1
    pip = _frame(eye[2:], inset=eye[:2])  # the source small in a corner of channels 2, 3
    other = _frame(np.array([[0.2, 0.2, 1.0, 1.0]], np.float32))  # like the background
    maps = np.stack([pip, source, other])[:, None].reshape(3, 6, 6, 4)
    features = np.asarray(regional_mac([jnp.asarray(maps)], 3))[:, None]  # 3 videos, 1 frame
    query, database = [features[0]], [features[1], features[2]]
    whole = chamfer_similarity([query[0][:, 0]], [d[:, 0] for d in database])[0]
    assert whole[1] > whole[0]  # as whole frames the look-alike wins
    inset = region_chamfer_similarity(query, database, "inset")[0]
    np.testing.assert_allclose(inset[0], 1.0, atol=1e-6)  # the inset is the source exactly
    assert inset[0] > inset[1]


def test_rejects_mixed_or_flat_features() -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(ValueError, match=r"\[n, R, D\]"):
        region_chamfer_similarity(videos(rng, [2]), videos(rng, [2], regions=3))
    with pytest.raises(ValueError, match=r"\[n, R, D\]"):
        region_chamfer_similarity([np.ones((2, 4), np.float32)], [np.ones((2, 4), np.float32)])
    with pytest.raises(ValueError, match="frame similarity"):
        region_chamfer_similarity(videos(rng, [2]), videos(rng, [2]), "mean")
