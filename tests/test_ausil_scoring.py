"""AuSiL similarity: batched scorer vs numpy per pair, the CLI's JSON, DAVR mAP on known cases."""

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ndvr_jax import sharding
from ndvr_jax.ausil.model import fit_pca_whitening, masked_chamfer, repeat_to_min_length
from ndvr_jax.ausil.scoring import Scorer, evaluate_davr, similarity_matrix, untrained_model
from ndvr_jax.ausil.training import init_ausil, save_model
from ndvr_jax.io.store import FeatureStore
from tests.test_ausil_model import np_params, np_similarity

ROOT = Path(__file__).resolve().parents[1]
DIMS = 12


def videos(rng, lengths):
    return [rng.standard_normal((n, DIMS)).astype(np.float32) for n in lengths]


def direct(model, trained, q, p):
    """One unpadded pair in plain numpy (short videos repeated to 10 segments first)."""
    q, p = repeat_to_min_length(q), repeat_to_min_length(p)
    params = np_params(model)
    if trained:
        return np_similarity(params, q, p)[0]

    def emb(x):
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        w = (x - params["pca_mean"]) @ params["pca_weights"]
        return w / np.linalg.norm(w, axis=1, keepdims=True)

    return float(np.mean(np.max(emb(q) @ emb(p).T, axis=1)))


def trained_model(pca, seed=3):
    model = init_ausil(DIMS, pca.weights.shape[1], jax.random.key(seed))
    model.set_whitening(pca)
    return model


@pytest.mark.parametrize("trained", [False, True])
def test_scorer_matches_direct_pairs_over_buckets(trained):
    rng = np.random.default_rng(0)
    queries, database = videos(rng, [3, 12, 20]), videos(rng, [5, 16, 17, 40, 11])
    pca = fit_pca_whitening(np.concatenate(database), 8)
    model = trained_model(pca) if trained else untrained_model(pca)
    scorer = Scorer(model, trained, sharding.make_mesh(4), batch_size=4)
    got = scorer.matrix(queries, database)
    expected = [[direct(model, trained, q, p) for p in database] for q in queries]
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-5)


def test_missing_videos_are_nan_and_davr_counts_them_as_misses():
    rng = np.random.default_rng(1)
    db = dict(zip(["a", "b", "c"], videos(rng, [10, 12, 14]), strict=True))
    queries = {"q0": db["a"][2:9] + 0.01, "q1": db["c"], "q2": np.zeros((0, DIMS))}
    model = untrained_model(fit_pca_whitening(np.concatenate(list(db.values())), 6))
    scorer = Scorer(model, False, sharding.make_mesh(1), batch_size=2)
    matrix = similarity_matrix(scorer, queries, db, ["q0", "q1", "q2"], ["a", "b", "c", "gone"])
    assert np.isnan(matrix[2]).all() and np.isnan(matrix[:, 3]).all()
    assert np.argmax(matrix[0, :3]) == 0 and np.argmax(matrix[1, :3]) == 2
    annotation = {"q0": {"DA": ["a"]}, "q1": {"DA": ["c", "gone"]}, "q2": {"DA": ["b"]}}
    result = evaluate_davr(matrix, ["q0", "q1", "q2"], ["a", "b", "c", "gone"], annotation)
    assert result["AP"] == {"q0": 1.0, "q1": 0.5, "q2": 0.0}
    assert result["mAP"] == pytest.approx(0.5)


def test_cli_writes_json_and_evaluates(tmp_path):
    rng = np.random.default_rng(2)
    store = FeatureStore(tmp_path / "features", "ausil")
    db = dict(zip(["d0", "d1", "d2", "d3"], videos(rng, [18, 9, 25, 13]), strict=True))
    for video_id, features in db.items():
        store.write(video_id, features, {})
    queries = {"q0": db["d2"][5:20], "q1": db["d1"], "q2": db["d3"][::-1]}
    store.write("q0", queries["q0"], {})
    np.save(tmp_path / "q1.npy", queries["q1"])
    store.write("q2", queries["q2"], {})
    (tmp_path / "queries.txt").write_text(
        f"q0\t{tmp_path}/features/q0/wlaf.npz\nq1\t{tmp_path}/q1.npy\nq2\t{tmp_path}/features\n"
    )
    (tmp_path / "database.txt").write_text("".join(f"{v}\tfeatures\n" for v in db))
    annotation = {"q0": {"DA": ["d2"]}, "q1": {"DA": ["d1"]}, "q2": {"DA": ["d3"]}}
    (tmp_path / "annotation.json").write_text(json.dumps(annotation))
    work = tmp_path / "work"
    work.mkdir()
    pca = fit_pca_whitening(np.concatenate(list(db.values())), 10)
    pca.save(work / "pca.npz")

    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    output = work / "similarities.json"
    similarity = [
        sys.executable, "-m", "ndvr_jax.similarity", "--system=ausil", f"--model_dir={work}",
        f"--queries={tmp_path / 'queries.txt'}", f"--database={tmp_path / 'database.txt'}",
        "--batch_size=8", f"--output={output}",
    ]  # fmt: skip
    evaluate = [
        sys.executable, "-m", "ndvr_jax.evaluate", "--dataset=annotation",
        f"--dataset_path={tmp_path / 'annotation.json'}", f"--queries={tmp_path / 'queries.txt'}",
        f"--database={tmp_path / 'database.txt'}", f"--similarities=ausil={output}",
        "--protocols=DAVR", f"--output_dir={work / 'eval'}",
    ]  # fmt: skip
    run = lambda command: subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    run(similarity)
    sims = json.loads(output.read_text())
    assert list(sims) == ["q0", "q1", "q2"] and list(sims["q0"]) == ["d0", "d1", "d2", "d3"]
    model = untrained_model(pca)
    assert sims["q1"]["d1"] == pytest.approx(direct(model, False, db["d1"], db["d1"]), abs=1e-5)
    evaluated = run(evaluate)
    results = json.loads((work / "eval" / "results.json").read_text())
    assert results["ausil"]["DAVR"]["mAP"] == 1.0 and "DAVR" in evaluated.stdout
    assert (work / "eval" / "pr_curves.png").is_file()

    model = trained_model(pca)
    save_model(model, work, {})
    run(similarity)
    sims = json.loads(output.read_text())
    assert sims["q0"]["d1"] == pytest.approx(direct(model, True, queries["q0"], db["d1"]), abs=1e-4)


def test_masked_chamfer_is_the_plain_chamfer():
    sim = np.random.default_rng(3).standard_normal((1, 5, 7)).astype(np.float32)
    got = masked_chamfer(jnp.asarray(sim), jnp.array([3]), jnp.array([4]))
    np.testing.assert_allclose(got[0], sim[0, :3, :4].max(axis=1).mean(), rtol=1e-6)
