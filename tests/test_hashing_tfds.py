"""TFDS builders on tiny fake UCF101 / HMDB51 folders, read back with tfds.data_source (no
TensorFlow), and fed through grain."""

import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ndvr_jax.data import tfds_builders
from ndvr_jax.data.tfds_features import DEFAULT_EXTRACT_COMMAND, FeatureSource
from ndvr_jax.hashing import data
from ndvr_jax.io.store import FeatureStore

UCF_CLASSES = ["ApplyEyeMakeup", "Basketball", "YoYo"]


def fake_ucf101(root, with_features=True):
    """3 classes x 3 videos (g01 in test, g02-g03 in train) and their features (id-valued)."""
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    (lists / "classInd.txt").write_text(
        "".join(f"{i + 1} {c}\n" for i, c in enumerate(UCF_CLASSES))
    )
    train, test, store = [], [], FeatureStore(root / "features")
    for label, name in enumerate(UCF_CLASSES):
        (root / "UCF-101" / name).mkdir(parents=True)
        for group in (1, 2, 3):
            vid = f"v_{name}_g0{group}_c01"
            (root / "UCF-101" / name / f"{vid}.avi").write_bytes(b"")
            path = f"{name}/{vid}.avi"
            (test if group == 1 else train).append(path if group == 1 else f"{path} {label + 1}")
            if with_features:
                store.write(vid, np.full((group + 1, 6), 10 * label + group, np.float32), {})
    (lists / "trainlist01.txt").write_text("\n".join(train) + "\n")
    (lists / "testlist01.txt").write_text("\n".join(test) + "\n")


def test_ucf101_builder_and_data_source(tmp_path):
    fake_ucf101(tmp_path / "manual")
    tfds_builders.build("ucf101_features/split1", tmp_path / "manual", str(tmp_path / "tfds"))
    train = tfds.data_source(
        "ucf101_features/split1", split="train", data_dir=str(tmp_path / "tfds")
    )
    test = tfds.data_source("ucf101_features/split1", split="test", data_dir=str(tmp_path / "tfds"))
    assert len(train) == 6 and len(test) == 3
    got = {data.video_id(e): (e["label"], e["features"]) for e in (train[i] for i in range(6))}
    assert set(got) == {f"v_{c}_g0{g}_c01" for c in UCF_CLASSES for g in (2, 3)}
    label, features = got["v_YoYo_g03_c01"]
    assert label == 2 and features.dtype == np.float32
    np.testing.assert_array_equal(features, np.full((4, 6), 23, np.float32))
    assert sorted(int(test[i]["label"]) for i in range(3)) == [0, 1, 2]
    # grain over the data source: one epoch of batches covers every training video once.
    ds = data.training_dataset(train, batch_size=3, max_frames=4, seed=0)
    firsts = np.concatenate([ds[s]["frames"][:, 0, 0] for s in range(2)])
    assert sorted(firsts.tolist()) == [2, 3, 12, 13, 22, 23]


def test_hmdb51_split_file_roles(tmp_path):
    root = tmp_path / "manual"
    splits = root / "testTrainMulti_7030_splits"
    splits.mkdir(parents=True)
    store = FeatureStore(root / "features")
    for label, name in enumerate(["brush_hair", "cartwheel"]):
        lines = [f"{name}_{i}.avi {role}" for i, role in enumerate(["1", "2", "0", "1"])]
        (splits / f"{name}_test_split1.txt").write_text("\n".join(lines) + "\n")
        for i in range(4):
            store.write(f"{name}_{i}", np.full((2, 3), label, np.float32), {})
    builder = tfds_builders.Hmdb51Features(
        config="split1", data_dir=str(tmp_path / "tfds"), file_format="array_record"
    )
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(root)))
    train = builder.as_data_source(split="train")
    test = builder.as_data_source(split="test")
    assert sorted(data.video_id(train[i]) for i in range(len(train))) == [
        "brush_hair_0",
        "brush_hair_3",
        "cartwheel_0",
        "cartwheel_3",
    ]
    assert {(data.video_id(e), int(e["label"])) for e in (test[0], test[1])} == {
        ("brush_hair_1", 0),
        ("cartwheel_1", 1),
    }


def test_missing_features_run_the_extract_command(tmp_path):
    fake_ucf101(tmp_path, with_features=False)
    # A stand-in for the extract binary that writes each listed video's features.
    script = (
        "import sys, numpy as np;"
        "from ndvr_jax.io.store import FeatureStore, read_id_path_list;"
        "a = dict(x.split('=', 1) for x in sys.argv[1:]);"
        "s = FeatureStore(a['--output_dir']);"
        "[s.write(i, np.ones((1, 2)), {}) for i, _ in read_id_path_list(a['--video_list'])]"
    )
    entries = [(f"v_YoYo_g0{g}_c01", f"UCF-101/YoYo/v_YoYo_g0{g}_c01.avi") for g in (1, 2)]
    store = FeatureSource(str(tmp_path), command=(sys.executable, "-c", script)).ensure(entries)
    assert store.load("v_YoYo_g02_c01").shape == (1, 2)
    assert not store.feature_path("v_YoYo_g03_c01").exists()


@pytest.mark.slow
def test_extract_binary_on_tiny_videos(tmp_path):
    from ndvr_jax.data.demo import build_demo_benchmark
    from ndvr_jax.io.store import read_id_path_list

    build_demo_benchmark(tmp_path / "demo", size="tiny", verbose=False)
    entries = read_id_path_list(tmp_path / "demo/videos.txt")[:2]
    command = (*DEFAULT_EXTRACT_COMMAND[:-1], "--config=configs/extract.py:runlocal")
    store = FeatureSource(str(tmp_path / "demo"), command=command).ensure(entries)
    assert all(store.load(v).ndim == 2 for v, _ in entries)


def fake_benchmark(root):
    """A benchmark folder in the demo layout: 2 queries, 3 database videos, their features."""
    (root / "videos").mkdir(parents=True)
    ids = ["q0", "q1", "a", "b", "c"]
    for v in ids:
        (root / "videos" / f"{v}.mp4").write_bytes(b"")
    lists = {"queries.txt": ids[:2], "database.txt": ids[2:]}
    for name, members in lists.items():
        (root / name).write_text("".join(f"{v}\tvideos/{v}.mp4\n" for v in members))
    (root / "annotation.json").write_text('{"q0": {"ND": ["a"]}, "q1": {"DS": ["b"]}}')
    store = FeatureStore(root / "features")
    for i, v in enumerate(ids):
        store.write(v, np.full((i + 1, 4), i, np.float32), {})
    return ids


def read_split(name, split, data_dir):
    rows = tfds.data_source(name, split=split, data_dir=str(data_dir))
    return {(r["id"].decode() if isinstance(r["id"], bytes) else r["id"]): r for r in rows}


def test_demo_builder_copy_groups_as_classes_with_a_held_out_fold(tmp_path):
    fake_benchmark(tmp_path / "bench")
    data_dir = tmp_path / "tfds"
    for name in ("ndvr_demo_features/all", "ndvr_demo_features/fold1of2"):
        tfds_builders.build(name, tmp_path / "bench", str(data_dir))
    everything = read_split("ndvr_demo_features/all", "train", data_dir)
    # two copy groups, q0-a and q1-b; c is in none
    assert {v: int(r["label"]) for v, r in everything.items()} == {
        "q0": 0, "q1": 1, "a": 0, "b": 1, "c": -1}  # fmt: skip
    np.testing.assert_array_equal(everything["b"]["features"], np.full((4, 4), 3, np.float32))
    held = read_split("ndvr_demo_features/fold1of2", "train", data_dir)
    # q1 is held out: its annotation gives no labels, so b and q1 are in no group
    assert {v: int(r["label"]) for v, r in held.items()} == {
        "q0": 0, "q1": -1, "a": 0, "b": -1, "c": -1}  # fmt: skip
    assert sorted(read_split("ndvr_demo_features/fold1of2", "queries", data_dir)) == ["q1"]
    assert sorted(read_split("ndvr_demo_features/all", "queries", data_dir)) == ["q0", "q1"]
    assert sorted(read_split("ndvr_demo_features/all", "database", data_dir)) == ["a", "b", "c"]


def test_hashing_trains_on_the_demo_builder_and_scores_by_the_annotation(tmp_path):
    from ndvr_jax.config_files import load_config_file
    from ndvr_jax.hashing import training

    fake_benchmark(tmp_path / "bench")
    tfds_builders.build("ndvr_demo_features/all", tmp_path / "bench", str(tmp_path / "tfds"))
    config = load_config_file("configs/hashing_64.py", "runlocal")
    config.data.update(kind="tfds", tfds_name="ndvr_demo_features/all",
                       tfds_data_dir=str(tmp_path / "tfds"), train_split="train",
                       database_split="database", test_split="queries",
                       annotation_file=str(tmp_path / "bench" / "annotation.json"))  # fmt: skip
    sets = training.load_video_sets(config.data)
    relevance, _ = training.relevance_of(sets, ["q0", "q1"], ["a", "b", "c"])
    np.testing.assert_array_equal(relevance, [[True, False, False], [False, True, False]])
    assert sorted(data.video_id(e) for e in sets.queries) == ["q0", "q1"]
    config.update(num_steps=2, batch_size=4)
    summary = training.run_training(config, str(tmp_path / "run"))
    assert 0.0 <= summary["mAP"] <= 1.0
    ids = np.load(tmp_path / "run" / "codes_database.npz")["ids"]
    assert sorted(ids) == ["a", "b", "c"]
