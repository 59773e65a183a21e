"""Triplets -> training -> evaluation binaries end to end on tiny original-format files."""

import json

import ml_collections
import numpy as np
import pytest
from flax import nnx
from scipy.spatial.distance import cdist

from ndvr_jax import search
from ndvr_jax.data.datasets import DatasetError
from ndvr_jax.data.feature_lists import FeatureError
from ndvr_jax.dml import training as dml_training
from ndvr_jax.dml.embed import load_dml, save_dml
from ndvr_jax.jobs import evaluate
from tests.test_triplets_cli import run_module, write_cc_web, write_fivr


def test_triplets_train_evaluate_binaries(tmp_path):
    pickle_path, files, dataset = write_cc_web(tmp_path / "cc")
    out = tmp_path / "output_data"
    generated = run_module(
        "ndvr_jax.triplets", "--dataset=cc_web_video", f"--dataset_path={pickle_path}",
        f"--feature_files={files}", f"--output_dir={out}",
    )  # fmt: skip
    assert generated.returncode == 0, generated.stderr[-2000:]
    model_dir = tmp_path / "model"
    trained = run_module(
        "ndvr_jax.train", "--config=configs/dml_vcdb.py:runlocal", f"--workdir={model_dir}",
        f"--config.data.features={out / 'cc_web_video_features.npy'}",
        f"--config.data.triplets={out / 'cc_web_video_triplets.npy'}",
        "--config.batch_size=16", "--config.optimizer.learning_rate=1e-3",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    assert "active_fraction" in trained.stdout and "network" in trained.stdout
    model, meta = load_dml(model_dir)
    assert meta["in_features"] == 16 and meta["hidden_sizes"] == [64]
    evaluated = run_module(
        "ndvr_jax.evaluate", "--config=configs/dml_vcdb.py:runlocal", f"--model_dir={model_dir}",
        f"--dataset_path={pickle_path}", f"--features={out / 'cc_web_video_features.npy'}",
        f"--feature_files={files}", "--fusion=both", f"--output_dir={tmp_path / 'eval'}",
    )  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(results) == {"baseline", "DML early", "DML late"}
    variants = {"CC_WEB", "CC_WEB*", "CC_WEB clean", "CC_WEB* clean"}
    for system in results.values():
        assert set(system) == variants
        for result in system.values():
            assert 0.5 < result["mAP"] <= 1.0 and result["num_queries"] == 3
    assert results["baseline"]["CC_WEB"]["mAP"] > 0.9  # well separated sets
    assert (tmp_path / "eval" / "pr_curves.png").stat().st_size > 1000
    similarities = json.loads((tmp_path / "eval" / "similarities_dml_late.json").read_text())
    seeds = [dataset["index"][q] for q in dataset["queries"]]
    assert list(similarities) == seeds
    assert len(similarities[seeds[0]]) == len(dataset["index"]) - 1
    assert max(similarities[seeds[0]], key=similarities[seeds[0]].get) == seeds[0]
    assert "CC_WEB* clean" in evaluated.stdout


def fivr_config(folder, files, **overrides):
    config = evaluate.default_eval_config()
    config.update(
        dataset="annotation", dataset_path=str(folder / "annotation.json"),
        queries=str(folder / "queries.txt"), database=str(folder / "database.txt"),
        feature_files=str(files), output_dir=str(folder / "eval"), **overrides,
    )  # fmt: skip
    return config


def test_distance_similarity_is_the_originals_and_labels_are_chosen(tmp_path):
    folder, files, annotation = write_fivr(tmp_path)
    results = evaluate.run_evaluation(fivr_config(folder, files, labels="ND,IS", top_k=2))
    assert list(results) == ["baseline"]
    assert list(results["baseline"]) == ["ND+IS"]
    sims = json.loads((folder / "eval" / "similarities_baseline.json").read_text())
    assert all(len(row) == 2 for row in sims.values())
    # 1 - d / max(d) over the whole query x database matrix, as the original's cdist code.
    rng = np.random.default_rng(0)
    q, db = rng.normal(size=(3, 5)), rng.normal(size=(7, 5))
    d = cdist(q, db)
    np.testing.assert_allclose(
        search.similarity_matrix(q, db, "distance", chunk=3), 1 - d / d.max(), atol=1e-5
    )
    cosine = search.similarity_matrix(q, db, "cosine", chunk=4)
    unit = lambda x: x / np.linalg.norm(x, axis=1, keepdims=True)
    np.testing.assert_allclose(cosine, unit(q) @ unit(db).T, atol=1e-5)


def save_model(directory, in_features):
    config = ml_collections.ConfigDict(dict(hidden_sizes=(8,), embedding_dim=4, activation="tanh"))
    save_dml(dml_training.create_dml(in_features, config, nnx.Rngs(0)), directory)
    return str(directory)


def test_evaluation_errors_are_clear(tmp_path):
    folder, files, _ = write_fivr(tmp_path)
    ids = ["qa", "qb", "qc", "a1", "a2", "b1", "n1", "n2", "n3"]
    (tmp_path / "ids.txt").write_text("\n".join(ids) + "\n")
    np.save(tmp_path / "f.npy", np.ones((9, 16), np.float32))
    global_vectors = dict(features=str(tmp_path / "f.npy"), ids=str(tmp_path / "ids.txt"))
    with pytest.raises(DatasetError, match="model takes 8-d inputs but the features are 16-d"):
        evaluate.run_evaluation(
            fivr_config(folder, files, model_dir=save_model(tmp_path / "m8", 8))
        )
    late = fivr_config(folder, "", model_dir=save_model(tmp_path / "m", 16), fusion="late")
    late.update(global_vectors)
    with pytest.raises(DatasetError, match="late fusion needs the frame features"):
        evaluate.run_evaluation(late)
    (folder / "queries.txt").write_text("qa\nzz\n")
    with pytest.raises(DatasetError, match="1 queries are not in the annotation: 'zz'"):
        evaluate.run_evaluation(fivr_config(folder, files))
    (folder / "queries.txt").write_text("qa\nqb\n")
    (files.parent / "n3.npy").unlink()
    with pytest.raises(FeatureError, match="video 'n3': feature file .* does not exist"):
        evaluate.run_evaluation(fivr_config(folder, files))
    np.save(tmp_path / "f.npy", np.ones((4, 16), np.float32))
    evaluated = run_module(
        "ndvr_jax.evaluate", "--dataset=annotation", f"--dataset_path={folder / 'annotation.json'}",
        f"--queries={folder / 'queries.txt'}", f"--database={folder / 'database.txt'}",
        f"--features={tmp_path / 'f.npy'}", f"--output_dir={tmp_path / 'e'}",
    )  # fmt: skip
    assert evaluated.returncode == 2, evaluated.stderr[-2000:]
    assert "error: " in evaluated.stderr and "has 4 rows but 8 video ids" in evaluated.stderr
    assert "Traceback" not in evaluated.stderr
