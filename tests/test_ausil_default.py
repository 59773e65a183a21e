"""The pretrained AuSiL shipped in the package: it loads, stays small, and reproduces the
similarities recorded when it was shipped (`tests/data/ausil_default_outputs.json`, written by
`record()` below) on a fixed tiny input; the untrained and PCA-refit paths run from it."""

import json
from pathlib import Path

import numpy as np

from ndvr_jax.ausil.saved import (
    DEFAULT_MODEL,
    default_model_dims,
    default_model_mode,
    load_default_model,
)
from ndvr_jax.ausil.scoring import make_scorer, similarity_matrix

RECORDED = Path(__file__).parent / "data" / "ausil_default_outputs.json"


def fixture_features() -> dict[str, np.ndarray]:
    """Two queries (a noisy copy of a span of d0, a random video) and two database videos."""
    rng = np.random.default_rng(0)
    dims = default_model_dims()
    d0 = np.abs(rng.standard_normal((24, dims))).astype(np.float32)
    d1 = np.abs(rng.standard_normal((16, dims))).astype(np.float32)
    q0 = d0[4:16] + 0.3 * np.abs(rng.standard_normal((12, dims))).astype(np.float32)
    q1 = np.abs(rng.standard_normal((12, dims))).astype(np.float32)
    return {"q0": q0, "q1": q1, "d0": d0, "d1": d1}


def scores(untrained: bool) -> np.ndarray:
    f = fixture_features()
    source = "" if untrained else str(DEFAULT_MODEL)  # "": the mode validation chose (untrained)
    scorer, _ = make_scorer(source, untrained, batch_size=8, num_devices=1)
    return similarity_matrix(scorer, f, f, ["q0", "q1"], ["d0", "d1"])


def record() -> None:
    """Rewrites the recorded outputs (only when a new default model is shipped)."""
    out = {k: scores(k == "untrained").tolist() for k in ("trained", "untrained")}
    RECORDED.write_text(json.dumps(out, indent=1) + "\n")


def test_shipped_model_is_small_and_loads():
    assert DEFAULT_MODEL.stat().st_size < 5 * 2**20
    _, name = make_scorer("", batch_size=8, num_devices=1)
    assert name == f"{default_model_mode()} (shipped default)"
    model = load_default_model()
    assert model.pca_weights.shape[0] == default_model_dims()


def test_shipped_model_reproduces_recorded_outputs():
    recorded = json.loads(RECORDED.read_text())
    for kind in ("trained", "untrained"):
        np.testing.assert_allclose(scores(kind == "untrained"), recorded[kind], atol=1e-4)
    assert recorded["trained"][0][0] > recorded["trained"][0][1]  # the copy finds its source


def test_refit_pca_keeps_the_model_size():
    f = fixture_features()
    database = [np.abs(np.random.default_rng(1).standard_normal((400, default_model_dims())))]
    scorer, name = make_scorer("", batch_size=8, num_devices=1, refit_on=database)
    assert name == "untrained (shipped default), PCA refitted"
    sims = similarity_matrix(scorer, f, f, ["q0"], ["d0", "d1"])
    assert np.isfinite(sims).all()
