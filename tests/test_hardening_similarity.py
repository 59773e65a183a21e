"""AuSiL similarity on bad features: NaN rows, wrong widths, missing files are named, exit 2."""

import numpy as np
import pytest

from ndvr_jax.ausil.model import fit_pca_whitening
from ndvr_jax.data.feature_lists import FeatureError
from ndvr_jax.io.store import FeatureStore
from ndvr_jax.jobs.similarity import default_similarity_config, run_similarity

DIMS = 12


@pytest.fixture
def workdir(tmp_path):
    rng = np.random.default_rng(0)
    store = FeatureStore(tmp_path / "features", "ausil")
    for video_id in ("q0", "d0", "d1"):
        store.write(video_id, rng.standard_normal((6, DIMS)), {})
    (tmp_path / "queries.txt").write_text("q0 q0.mp4\n")
    (tmp_path / "database.txt").write_text("d0 d0.mp4\nd1 d1.mp4\n")
    (tmp_path / "work").mkdir()
    fit_pca_whitening(rng.standard_normal((40, DIMS)), 8).save(tmp_path / "work" / "pca.npz")
    return tmp_path, store


def ausil_config(tmp_path):
    c = default_similarity_config()
    c.system, c.model_dir, c.untrained = "ausil", str(tmp_path / "work"), True
    c.queries, c.database = str(tmp_path / "queries.txt"), str(tmp_path / "database.txt")
    c.features_dir, c.output = str(tmp_path / "features"), str(tmp_path / "out.json")
    return c


def test_nan_rows_are_named(workdir):
    tmp_path, store = workdir
    bad = store.load("d1")
    bad[[2, 4], 0] = np.nan
    store.write("d1", bad, {})
    with pytest.raises(FeatureError, match=r"video 'd1'.*2 of 6 .*NaN or inf \(rows 2, 4\)"):
        run_similarity(ausil_config(tmp_path))
    assert not (tmp_path / "out.json").exists()


def test_a_wrong_width_is_named(workdir):
    tmp_path, store = workdir
    store.write("d1", np.ones((3, DIMS + 4)), {})
    with pytest.raises(FeatureError, match=r"video 'd1' has 16-d features, video 'q0' has 12-d"):
        run_similarity(ausil_config(tmp_path))


def test_features_the_model_does_not_take_are_named(workdir):
    tmp_path, _ = workdir
    fit_pca_whitening(np.random.default_rng(1).standard_normal((40, 20)), 8).save(
        tmp_path / "work" / "pca.npz"
    )
    with pytest.raises(FeatureError, match=r"'q0' has 12-d features, the AuSiL model .* 20-d"):
        run_similarity(ausil_config(tmp_path))


def test_a_requested_video_without_features_is_an_error(workdir):
    tmp_path, _ = workdir
    (tmp_path / "database.txt").write_text("d0 d0.mp4\nd9 d9.mp4\n")
    with pytest.raises(FeatureError, match=r"video 'd9': no audio features"):
        run_similarity(ausil_config(tmp_path))
