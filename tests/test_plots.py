"""Plots write non-empty PNG files atomically."""

import numpy as np
import pytest

from ndvr_jax.evaluation import metrics, plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary files left


def test_pr_curves_png(tmp_path):
    recall = metrics.RECALL_LEVELS.tolist()
    systems = {
        "baseline": {"mAP": 0.8, "pr_curve": {"recall": recall, "precision": [0.9] * 20}},
        "DML": {"recall": recall, "precision": np.linspace(1, 0.6, 20).tolist()},
    }
    path = tmp_path / "plots" / "pr.png"
    plots.plot_pr_curves(systems, path, title="CC_WEB_VIDEO")
    assert_png(path)
    with pytest.raises(ValueError, match="no PR curves"):
        plots.plot_pr_curves({}, path)
    with pytest.raises(ValueError, match="equal length"):
        plots.plot_pr_curves({"x": {"recall": [0.5, 1.0], "precision": [1.0]}}, path)


def test_similarity_matrix_png(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "small.png"
    plots.plot_similarity_matrix(
        rng.random((3, 5)), path, row_labels=["a", "b", "c"], col_labels=list("vwxyz")
    )
    assert_png(path)
    big = tmp_path / "big" / "big.png"
    plots.plot_similarity_matrix(rng.random((60, 80)), big, value_range=(0.0, 1.0))
    assert_png(big)
    with pytest.raises(ValueError, match="labels"):
        plots.plot_similarity_matrix(rng.random((3, 5)), path, row_labels=["a"])
    with pytest.raises(ValueError, match="2-d"):
        plots.plot_similarity_matrix(np.zeros(4), path)
