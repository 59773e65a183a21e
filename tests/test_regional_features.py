"""Regional feature files, their whitening, and `--system=regional` through the similarity job."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ndvr_jax.ausil.model import PCAWhitening
from ndvr_jax.data.feature_lists import FeatureError
from ndvr_jax.jobs.similarity import default_similarity_config, run_similarity
from ndvr_jax.regional.features import fit_region_whitening, load_region_features, whiten_regions
from tests.test_region_chamfer import numpy_region_chamfer


def write_videos(folder, videos: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for video_id, features in videos.items():
        np.save(folder / f"{video_id}.npy", features)


def test_load_checks_shape_and_values(tmp_path) -> None:
    write_videos(tmp_path, {"flat": np.ones((3, 4)), "bad": np.ones((2, 2, 2, 2))})
    assert load_region_features(tmp_path / "flat.npy").shape == (3, 1, 4)
    with pytest.raises(FeatureError, match="'bad'.*R, D"):
        load_region_features(tmp_path / "bad.npy", "bad")
    nan = np.ones((2, 3, 4), np.float32)
    nan[1, 2, 0] = np.nan
    write_videos(tmp_path, {"nan": nan})
    with pytest.raises(FeatureError, match="NaN"):
        load_region_features(tmp_path / "nan.npy", "nan")
    with pytest.raises(FeatureError, match="cannot read"):
        load_region_features(tmp_path / "missing.npy", "missing")


def test_whitening_decorrelates_the_corpus_regions(tmp_path) -> None:
    rng = np.random.default_rng(0)
    mixing = rng.normal(size=(6, 6)) * np.array([3.0, 1, 1, 0.5, 0.2, 0.1])[:, None]
    videos = {f"v{i}": (rng.normal(size=(40, 5, 6)) @ mixing + 2.0) for i in range(3)}
    write_videos(tmp_path, videos)
    listing = tmp_path / "list.txt"
    listing.write_text("".join(f"{v}\t{v}.npy\n" for v in videos))
    pca = fit_region_whitening(listing)
    rows = np.concatenate([v.reshape(-1, 6) for v in videos.values()])
    unit = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    variances = np.sort(np.linalg.eigvalsh(np.cov(unit, rowvar=False)))[::-1]
    want = np.diag(variances / (variances + 1e-5))  # identity but for the eps of fit_pca_whitening
    np.testing.assert_allclose(np.cov(pca.apply(unit), rowvar=False), want, atol=1e-4)
    assert fit_region_whitening(listing, n_components=4, max_vectors=50).weights.shape == (6, 4)
    out = whiten_regions(videos["v0"], pca)
    assert out.shape == (40, 5, 6)
    np.testing.assert_allclose(np.linalg.norm(out, axis=-1), 1.0, atol=1e-5)


def test_regional_system_writes_the_similarity_json(tmp_path) -> None:
    rng = np.random.default_rng(1)
    source, other = rng.normal(size=(6, 3, 8)), rng.normal(size=(5, 3, 8))
    videos = {"q": source[1:5] + 0.1 * rng.normal(size=(4, 3, 8)), "a": source, "n": other}
    write_videos(tmp_path / "f", videos)
    (tmp_path / "queries.txt").write_text("q\tf/q.npy\n")
    (tmp_path / "database.txt").write_text("a\tf/a.npy\nn\tf/n.npy\n")
    config = default_similarity_config()
    config.update(system="regional", region_frames="visil", output=str(tmp_path / "s.json"))
    config.update(queries=str(tmp_path / "queries.txt"), database=str(tmp_path / "database.txt"))
    sims = json.loads(run_similarity(config).read_text())
    for d in ("a", "n"):
        want = numpy_region_chamfer(videos["q"], videos[d], "visil")
        assert sims["q"][d] == pytest.approx(want, abs=1e-5)
    assert sims["q"]["a"] > sims["q"]["n"]
    pca = PCAWhitening(np.zeros(8, np.float32), np.eye(8, dtype=np.float32)[:, :5])
    pca.save(tmp_path / "pca.npz")
    config.update(region_pca=str(tmp_path / "pca.npz"))
    whitened = json.loads(run_similarity(config).read_text())
    want = numpy_region_chamfer(videos["q"][..., :5], videos["a"][..., :5], "visil")
    assert whitened["q"]["a"] == pytest.approx(want, abs=1e-5)
