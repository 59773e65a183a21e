"""The triplet generation binary on tiny files in the original formats, and its errors."""

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ndvr_jax.data.benchmarks import load_benchmark, read_row_ids
from ndvr_jax.data.datasets import DatasetError
from ndvr_jax.data.feature_lists import FeatureError
from ndvr_jax.dml import triplets as rules
from ndvr_jax.dml.generation import generate
from ndvr_jax.dml.groups import annotation_groups

REPO = Path(__file__).resolve().parents[1]
DIM = 16


def run_module(module: str, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Runs `python -m <module> args` from the repository root on one CPU device."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu", "XLA_FLAGS": ""}
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )


def write_features(folder: Path, arrays: dict[str, np.ndarray], name: str = "features.txt") -> Path:
    """`<id>.npy` files and a `<id>\\t<path>` list of them (relative paths)."""
    folder.mkdir(parents=True, exist_ok=True)
    for video_id, array in arrays.items():
        np.save(folder / f"{video_id}.npy", array)
    path = folder / name
    path.write_text("".join(f"{v}\t{v}.npy\n" for v in arrays))
    return path


def clustered_videos(
    groups: dict[str, int], seed: int = 0, dim: int = DIM, near: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Frame features: videos of one group are noisy copies of its centre; group -1 is random,
    or (`near`: video -> group) near a group's centre, a hard negative."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(groups.values()) + 1, dim))
    near = near or {}
    out = {}
    for video_id, group in groups.items():
        centre = centres[group] if group >= 0 else rng.normal(size=dim)
        if video_id in near:
            centre = 0.8 * centres[near[video_id]] + 0.5 * rng.normal(size=dim)
        frames = centre + 0.8 * rng.normal(size=(int(rng.integers(2, 6)), dim))
        out[video_id] = (frames + 3.0).astype(np.float32)
    return out


def write_cc_web(folder: Path, n_sets: int = 3, per_set: int = 4, n_other: int = 4):
    """A tiny `cc_web_video.pickle` (original layout, with `excluded`) and its feature list."""
    ids, groups, near, gt, queries, excluded = [""], {}, {}, [], [], []
    for s in range(n_sets):
        labels = {}
        for k in range(per_set):
            ids.append(f"{s}_{k}_Y")
            groups[ids[-1]] = s
            labels[len(ids) - 1] = "E" if k == 0 else "SVML"[k % 4]
        ids.append(f"{s}_x_Y")  # a dissimilar video of the set, yet close to it
        groups[ids[-1]], near[ids[-1]] = -1, s
        labels[len(ids) - 1] = "X"
        queries.append(len(ids) - per_set - 1)
        gt.append(labels)
        excluded.append({len(ids) - 2})  # the set's last positive is dropped by "clean"
    for k in range(n_other):
        ids.append(f"other{k}")
        groups[ids[-1]] = -1
    dataset = {"index": ids, "queries": queries, "ground_truth": gt, "excluded": excluded}
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "cc_web_video.pickle", "wb") as f:
        pickle.dump(dataset, f, protocol=2)
    files = write_features(folder / "features", clustered_videos(groups, near=near))
    return folder / "cc_web_video.pickle", files, dataset


def write_fivr(folder: Path):
    """A tiny FIVR-style annotation, query/database lists and features."""
    groups = {"qa": 0, "qb": 1, "qc": 0, "a1": 0, "a2": 0, "b1": 1, "n1": -1, "n2": -1, "n3": -1}
    annotation = {
        "qa": {"ND": ["a1"], "DS": ["a2"], "IS": ["n1"]},
        "qb": {"ND": ["b1"]},
        "qc": {"DS": ["a1", "a2"]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "annotation.json").write_text(json.dumps(annotation))
    (folder / "queries.txt").write_text("qa\nqb\nqc\n")
    (folder / "database.txt").write_text("a1\na2\nb1\nn1\nn2\nn3\n")
    files = write_features(folder / "features", clustered_videos(groups, seed=1))
    return folder, files, annotation


def test_cc_web_video_binary_writes_the_original_outputs(tmp_path):
    pickle_path, files, dataset = write_cc_web(tmp_path / "cc")
    out = tmp_path / "out"
    result = run_module(
        "ndvr_jax.triplets", "--dataset=cc_web_video", f"--dataset_path={pickle_path}",
        f"--feature_files={files}", f"--output_dir={out}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    features = np.load(out / "cc_web_video_features.npy")
    found = np.load(out / "cc_web_video_triplets.npy")
    assert features.shape == (len(dataset["index"]), DIM)
    np.testing.assert_array_equal(features[0], 0.0)  # the placeholder row
    assert (out / "cc_web_video_ids.txt").read_text().split("\n")[:2] == ["", "0_0_Y"]
    groups = np.load(out / "cc_web_video_groups.npy")
    assert groups[1] == 0 and groups[dataset["queries"][1]] == 1 and groups[5] == -1
    # The same triplets as the library rule on the same features.
    cc_web = load_benchmark("cc_web_video", str(pickle_path))[1]
    want = rules.query_set_triplets(features, rules.cc_web_query_sets(cc_web))
    np.testing.assert_array_equal(found, want)
    assert found.dtype == np.int64 and found.shape[1] == 3
    assert "triplets; wrote" in result.stdout


def test_annotation_and_generic_datasets(tmp_path):
    folder, files, annotation = write_fivr(tmp_path / "fivr")
    out = generate(
        "annotation", files, tmp_path / "out", dataset_path=str(folder / "annotation.json"),
        queries=str(folder / "queries.txt"), database=str(folder / "database.txt"),
    )  # fmt: skip
    ids = read_row_ids(out.ids)
    assert ids == ["qa", "qb", "qc", "a1", "a2", "b1", "n1", "n2", "n3"]
    groups = np.load(out.groups)
    # qa + a1 + a2 in one group; qb + b1 in another; qc has 2 positives and joins qa's group.
    assert groups[0] == groups[2] == groups[3] == groups[4] != groups[1] == groups[5]
    assert list(groups[6:]) == [-1, -1, -1]
    found = np.load(out.triplets)
    positives = {(0, 3), (0, 4), (3, 4), (1, 5), (2, 3), (2, 4)}
    for a, p, n in found:
        assert (min(a, p), max(a, p)) in positives
        assert ids[n] not in {v for labels in annotation[ids[min(a, p)]].values() for v in labels}
    # A generic dataset of the same videos: groups come straight from the file.
    videos = [
        {"id": v, "group": int(g), "split": "train"} for v, g in zip(ids, groups, strict=True)
    ]
    dataset = {"format": "ndvr-jax-dataset", "version": 1, "name": "mine", "videos": videos}
    (tmp_path / "dataset.json").write_text(json.dumps(dataset))
    generic = generate(
        "generic", files, tmp_path / "out", dataset_path=str(tmp_path / "dataset.json"),
        split="train", name="mine",
    )  # fmt: skip
    np.testing.assert_array_equal(np.load(generic.groups), groups)
    assert generic.features.name == "mine_features.npy"


def test_raw_vcdb_annotations(tmp_path):
    groups = {"a": 0, "b": 0, "c": 1, "d": 1, "x1": -1, "x2": -1, "x3": -1}
    files = write_features(tmp_path / "features", clustered_videos(groups, seed=2))
    lengths = {v: len(np.load(tmp_path / "features" / f"{v}.npy")) for v in groups}
    csv = tmp_path / "annotation"
    csv.mkdir()
    (csv / "topic.txt").write_text(
        f"a.mp4,b.mp4,00:00:00,00:00:0{lengths['a']},00:00:00,00:00:0{lengths['b']}\n"
        f"c.flv,d.flv,0,{lengths['c']},0,1\n"
    )
    out = generate("vcdb", files, tmp_path / "out", dataset_path=str(csv))
    ids = read_row_ids(out.ids)
    assert ids[:4] == ["a", "b", "c", "d"] and sorted(ids[4:]) == ["x1", "x2", "x3"]
    # (c, d) overlaps only 1 s of d: below the 0.8 threshold, so only (a, b) is a group.
    np.testing.assert_array_equal(np.load(out.groups), [0, 0, -1, -1, -1, -1, -1])
    found = np.load(out.triplets)
    assert found.size == 0 or set(map(tuple, found[:, :2].tolist())) <= {(0, 1), (1, 0)}


def test_bad_inputs_give_clear_errors(tmp_path):
    pickle_path, files, dataset = write_cc_web(tmp_path / "cc")
    feature_dir = files.parent
    args = dict(dataset_path=str(pickle_path))
    with pytest.raises(FeatureError, match="feature list .* does not exist"):
        generate("cc_web_video", tmp_path / "nope.txt", tmp_path / "o", **args)
    with pytest.raises(DatasetError, match="does not exist"):
        generate("cc_web_video", files, tmp_path / "o", dataset_path="missing.pickle")
    os.remove(feature_dir / "1_1_Y.npy")
    with pytest.raises(FeatureError, match=r"video '1_1_Y': feature file .* does not exist"):
        generate("cc_web_video", files, tmp_path / "o", **args)
    np.save(feature_dir / "1_1_Y.npy", np.ones((3, DIM + 1), np.float32))
    with pytest.raises(FeatureError, match=rf"are {DIM + 1}-d, expected {DIM}-d"):
        generate("cc_web_video", files, tmp_path / "o", **args)
    bad = np.ones((3, DIM), np.float32)
    bad[1, 2] = np.nan
    np.save(feature_dir / "1_1_Y.npy", bad)
    with pytest.raises(FeatureError, match=r"1 of 3 frame rows .* contain NaN"):
        generate("cc_web_video", files, tmp_path / "o", **args)
    # Ids not in the annotation.
    folder, fivr_files, _ = write_fivr(tmp_path / "fivr")
    (folder / "queries.txt").write_text("qa\nzz\n")
    with pytest.raises(DatasetError, match=r"1 queries are not in the annotation: 'zz'"):
        generate(
            "annotation", fivr_files, tmp_path / "o", dataset_path=str(folder / "annotation.json"),
            queries=str(folder / "queries.txt"),
        )  # fmt: skip
    # The binary reports such errors in one line and exits with status 2.
    result = run_module(
        "ndvr_jax.triplets", "--dataset=cc_web_video", f"--dataset_path={pickle_path}",
        f"--feature_files={files}", f"--output_dir={tmp_path / 'o'}",
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: video '1_1_Y'" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o").exists()


def test_annotation_groups_leave_out_compilations_and_other_queries():
    annotation = {
        "q1": {"ND": ["a"]},
        "q2": {"DS": ["a", "b", "c"]},  # a compilation: more than max_relevant positives
        "q3": {"ND": ["c"], "CS": ["b"]},
        "q4": {"ND": ["b"]},
    }
    ids = ["q1", "q2", "q3", "q4", "a", "b", "c", "d"]
    groups = annotation_groups(annotation, ["q1", "q2", "q3"], ids, ("ND", "DS"))
    assert groups[0] == groups[4] and groups[2] == groups[6] and groups[0] != groups[2]
    assert groups[1] == -2 and groups[3] == -2  # compilation; a query outside the fold
    assert groups[5] == -1 and groups[7] == -1  # b (q4 is left out) and d are in no group
