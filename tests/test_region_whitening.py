"""Region whitening: the shipped one loads and reproduces the similarities recorded when it was
shipped (`tests/data/region_pca_outputs.json`, written by `record()` below) on a fixed input;
`--region_pca` names none, the shipped one, one fitted on the database, or a file."""

import json
import logging
from pathlib import Path

import numpy as np

from ndvr_jax.ausil.model import PCAWhitening
from ndvr_jax.regional.similarity import (
    DEFAULT_WHITENING,
    DEFAULT_WHITENING_DIM,
    region_whitening,
    regional_similarities,
)

RECORDED = Path(__file__).parent / "data" / "region_pca_outputs.json"


def fixture_videos() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Queries (a noisy copy of d0 shown as an inset, a random video) and two database videos,
    `[T, 2, 2048]` non-negative like MAC."""
    rng = np.random.default_rng(0)
    frames = lambda n: np.abs(rng.standard_normal((n, DEFAULT_WHITENING_DIM))).astype(np.float32)
    d0, d1 = frames(12), frames(10)
    copy = d0[2:8] + 0.3 * frames(6)
    q0 = np.stack([frames(6), copy], axis=1)  # region 0 the foreign frame, region 1 the inset
    q1 = np.stack([frames(6)] * 2, axis=1)
    database = [np.stack([d, d], axis=1) for d in (d0, d1)]
    return [q0, q1], database


def scores() -> np.ndarray:
    queries, database = fixture_videos()
    return regional_similarities(queries, database, "inset", "default", margin=0.01)


def record() -> None:
    """Rewrites the recorded outputs (only when a new default whitening is shipped)."""
    RECORDED.write_text(json.dumps(scores().tolist(), indent=1) + "\n")


def test_shipped_whitening_is_small_and_reproduces_recorded_outputs() -> None:
    assert DEFAULT_WHITENING.stat().st_size < 3 * 2**20
    pca = PCAWhitening.load(DEFAULT_WHITENING)
    assert pca.weights.shape == (DEFAULT_WHITENING_DIM, 512) and np.isfinite(pca.weights).all()
    recorded = np.array(json.loads(RECORDED.read_text()))
    np.testing.assert_allclose(scores(), recorded, atol=1e-4)
    assert recorded[0, 0] > recorded[0, 1]  # the inset finds its source


def test_whitening_names(tmp_path, caplog) -> None:
    queries, database = fixture_videos()
    assert region_whitening("", database) is None
    assert region_whitening("default", database).weights.shape[1] == 512
    with caplog.at_level(logging.WARNING):
        assert region_whitening("default", [d[..., :64] for d in database]) is None
    assert "not whitened" in caplog.text
    rng = np.random.default_rng(1)
    distinct = [np.abs(rng.standard_normal((n, 2, DEFAULT_WHITENING_DIM))) for n in (10, 12)]
    fitted = region_whitening("database", distinct)
    # 44 database vectors: at most 43 components; the whitened database has unit covariance
    assert fitted.weights.shape == (DEFAULT_WHITENING_DIM, 43)
    rows = np.concatenate([d.reshape(-1, d.shape[-1]) for d in distinct])
    rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    white = fitted.apply(rows)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(43), atol=2e-2)
    fitted.save(tmp_path / "w.npz")
    loaded = region_whitening(str(tmp_path / "w.npz"), [])
    np.testing.assert_allclose(loaded.weights, fitted.weights)
