"""The similarity job and binary: every system against its numpy reference, and bad input."""

import json

import ml_collections
import numpy as np
import pytest
from flax import nnx

from ndvr_jax.data.feature_lists import FeatureError
from ndvr_jax.dml.embed import save_dml
from ndvr_jax.dml.training import create_dml
from ndvr_jax.jobs.similarity import default_similarity_config, run_similarity
from tests.test_chamfer import numpy_chamfer
from tests.test_triplets_cli import clustered_videos, run_module, write_features

GROUPS = {"q0": 0, "q1": 1, "a0": 0, "a1": 1, "n0": -1, "n1": -1}


def numpy_global(frames: np.ndarray) -> np.ndarray:
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    centred = unit(frames - frames.mean(axis=1, keepdims=True))
    mean = centred.mean(axis=0)
    return unit(mean - mean.mean())


@pytest.fixture()
def lists(tmp_path):
    videos = clustered_videos(GROUPS, seed=3)
    write_features(tmp_path / "f", videos)
    for name, ids in (("queries", ["q0", "q1"]), ("database", ["a0", "a1", "n0", "n1"])):
        (tmp_path / f"{name}.txt").write_text("".join(f"{v}\tf/{v}.npy\n" for v in ids))
    return tmp_path, videos


def config(tmp_path, **overrides) -> ml_collections.ConfigDict:
    c = default_similarity_config()
    c.update(queries=str(tmp_path / "queries.txt"), database=str(tmp_path / "database.txt"))
    c.update(output=str(tmp_path / "out" / "sims.json"), **overrides)
    return c


def test_global_and_chamfer_match_numpy(lists):
    tmp_path, videos = lists
    for system in ("global", "chamfer"):
        sims = json.loads(run_similarity(config(tmp_path, system=system)).read_text())
        assert list(sims) == ["q0", "q1"] and list(sims["q0"]) == ["a0", "a1", "n0", "n1"]
        for q in sims:
            for d, score in sims[q].items():
                if system == "global":
                    want = float(numpy_global(videos[q]) @ numpy_global(videos[d]))
                else:
                    want = numpy_chamfer(videos[q], videos[d])
                assert score == pytest.approx(want, abs=1e-5)
        assert max(sims["q0"], key=sims["q0"].get) == "a0"
        assert max(sims["q1"], key=sims["q1"].get) == "a1"
    top = json.loads(run_similarity(config(tmp_path, system="chamfer", top_k=2)).read_text())
    assert [len(row) for row in top.values()] == [2, 2]


def test_dml_fusions_use_the_saved_network(lists):
    tmp_path, videos = lists
    network = ml_collections.ConfigDict(dict(hidden_sizes=(8,), embedding_dim=4, activation="tanh"))
    model = create_dml(16, network, nnx.Rngs(0))
    save_dml(model, tmp_path / "model")
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    embed_late = lambda v: unit(np.asarray(model(unit(v - v.mean(1, keepdims=True)))).mean(0))
    early = config(tmp_path, system="dml", model_dir=str(tmp_path / "model"))
    late = config(tmp_path, system="dml", model_dir=str(tmp_path / "model"), fusion="late")
    sims_early = json.loads(run_similarity(early).read_text())
    want = (
        np.asarray(model(numpy_global(videos["q1"])[None]))[0]
        @ np.asarray(model(numpy_global(videos["n0"])[None]))[0]
    )
    assert sims_early["q1"]["n0"] == pytest.approx(float(want), abs=1e-5)
    sims_late = json.loads(run_similarity(late).read_text())
    want = embed_late(videos["q0"]) @ embed_late(videos["a1"])
    assert sims_late["q0"]["a1"] == pytest.approx(float(want), abs=1e-5)


def test_bad_input_is_named(lists):
    tmp_path, videos = lists
    with pytest.raises(FeatureError, match="takes 2048-d inputs"):  # the shipped network
        run_similarity(config(tmp_path, system="dml"))
    with pytest.raises(ValueError, match="system must be one of"):
        run_similarity(config(tmp_path, system="bogus"))
    bad = videos["a1"].copy()
    bad[1, 3] = np.nan
    np.save(tmp_path / "f" / "a1.npy", bad)
    with pytest.raises(FeatureError, match=r"'a1'.*NaN or inf \(rows 1\)"):
        run_similarity(config(tmp_path))
    (tmp_path / "f" / "a1.npy").unlink()
    with pytest.raises(FeatureError, match="'a1'.*does not exist"):
        run_similarity(config(tmp_path))


def test_binary_writes_json_and_exits_2_on_bad_input(lists):
    tmp_path, _ = lists
    args = [f"--queries={tmp_path / 'queries.txt'}", f"--database={tmp_path / 'database.txt'}"]
    ok = run_module("ndvr_jax.similarity", "--system=chamfer", *args, f"--output={tmp_path}/c.json")
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert set(json.loads((tmp_path / "c.json").read_text())) == {"q0", "q1"}
    bad = run_module("ndvr_jax.similarity", "--system=chamfer", f"--queries={tmp_path}/none.txt",
                     f"--database={tmp_path / 'database.txt'}")  # fmt: skip
    assert bad.returncode == 2 and "none.txt" in bad.stderr and "Traceback" not in bad.stderr
