"""The DML network shipped in the package: it loads, stays small, and reproduces the similarities
recorded when it was shipped (`tests/data/dml_default_outputs.json`, written by `record()`
below) on a fixed input; `similarity --system=dml` without `model_dir` uses it."""

import json
from pathlib import Path

import ml_collections
import numpy as np

from ndvr_jax import search
from ndvr_jax.dml.embed import DEFAULT_DML, MODEL_FILE, PARAMS_FILE, embed_early, load_dml
from ndvr_jax.jobs.similarity import system_similarities

RECORDED = Path(__file__).parent / "data" / "dml_default_outputs.json"


def fixture_videos() -> list[np.ndarray]:
    """Frame features `[T, D]` of three videos: a source, a noisy copy of its middle, another."""
    rng = np.random.default_rng(0)
    width = json.loads((DEFAULT_DML / MODEL_FILE).read_text())["in_features"]
    source = np.abs(rng.standard_normal((12, width))).astype(np.float32)
    copy = source[3:9] + 0.5 * np.abs(rng.standard_normal((6, width))).astype(np.float32)
    other = np.abs(rng.standard_normal((10, width))).astype(np.float32) ** 2
    return [source, copy, other]


def similarities() -> np.ndarray:
    model, _ = load_dml(DEFAULT_DML)
    embedded = embed_early(model, search.global_vectors(fixture_videos()))
    return embedded @ embedded.T


def record() -> None:
    """Rewrites the recorded outputs (only when a new default network is shipped)."""
    RECORDED.write_text(json.dumps({"similarities": similarities().tolist()}, indent=1) + "\n")


def test_shipped_network_is_small_and_loads():
    assert (DEFAULT_DML / PARAMS_FILE).stat().st_size < 6 * 2**20
    model, meta = load_dml(DEFAULT_DML)
    assert model.layers[0].kernel.get_value().dtype == np.float32  # stored as float16
    assert meta["validation_map"] > meta["validation_map_untrained"]  # why it is shipped


def test_shipped_network_reproduces_recorded_outputs():
    recorded = np.array(json.loads(RECORDED.read_text())["similarities"])
    np.testing.assert_allclose(similarities(), recorded, atol=1e-4)
    assert recorded[0, 1] > recorded[0, 2] and recorded[1, 0] > recorded[1, 2]


def test_similarity_without_model_dir_uses_the_shipped_network():
    videos = fixture_videos()
    config = ml_collections.ConfigDict(dict(system="dml", model_dir="", fusion="early"))
    config.metric = "cosine"
    matrix = system_similarities(config, videos[1:2], [videos[0], videos[2]])
    np.testing.assert_allclose(matrix[0], similarities()[1, [0, 2]], atol=1e-5)
