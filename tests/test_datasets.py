"""Dataset readers on small files written in the original formats."""

import json
import os
import pickle

import numpy as np
import pytest

from ndvr_jax.data.datasets import (
    VCDB,
    CCWebVideo,
    DatasetError,
    GenericDataset,
    load_cc_web_pickle,
    load_generic_dataset,
    load_vcdb_pickle,
    read_cc_web_raw,
    read_vcdb_annotations,
    save_generic_dataset,
    vcdb_from_annotations,
)
from ndvr_jax.data.datasets.vcdb import parse_time
from ndvr_jax.data.safe_pickle import UnsafePickleError


def py2_dumps(obj) -> bytes:
    """Protocol-0 pickle as Python 2 wrote it (byte strings with the STRING opcode)."""
    if isinstance(obj, str):
        return f"S'{obj}'\n".encode()
    if isinstance(obj, bool) or obj is None:
        raise TypeError(obj)
    if isinstance(obj, int):
        return f"I{obj}\n".encode()
    if isinstance(obj, float):
        return f"F{obj!r}\n".encode()
    if isinstance(obj, list):
        return b"(l" + b"".join(py2_dumps(v) + b"a" for v in obj)
    if isinstance(obj, dict):
        return b"(d" + b"".join(py2_dumps(k) + py2_dumps(v) + b"s" for k, v in obj.items())
    raise TypeError(obj)


CC_INDEX = ["", "1_1_Y", "1_2_Y", "1_3_G", "2_1_Y", "2_2_H"]
CC_GT = [{1: "E", 2: "S", 3: "X"}, {4: "E", 5: "-1", 2: "V"}]


def _write_cc_pickle(path, **extra):
    data = {"index": CC_INDEX, "queries": [1, 4], "ground_truth": CC_GT, **extra}
    path.write_bytes(py2_dumps(data) + b".")
    return path


def test_cc_web_original_pickle(tmp_path):
    dataset = load_cc_web_pickle(_write_cc_pickle(tmp_path / "cc_web_video.pickle"))
    assert dataset.video_ids == CC_INDEX
    assert dataset.queries == [1, 4]
    assert dataset.ground_truth == CC_GT
    assert dataset.excluded == [set(), set()]
    assert dataset.labelled(0, ("E", "S", "V", "M", "L")) == [1, 2]
    assert dataset.labelled(1, ("X", "-1")) == [5]


def test_cc_web_visil_variant_with_excluded(tmp_path):
    data = {
        "index": {vid: i for i, vid in enumerate(CC_INDEX) if vid},
        "queries": ["1_1_Y", "2_1_Y"],
        "ground_truth": [{"1_1_Y": "E", "1_2_Y": "S", "1_3_G": "X"}, {4: "E", 5: "-1", 2: "V"}],
        "excluded": [{"1_3_G"}, [5]],
    }
    (tmp_path / "cc.pickle").write_bytes(pickle.dumps(data, protocol=4))
    dataset = load_cc_web_pickle(tmp_path / "cc.pickle")
    assert dataset.video_ids == CC_INDEX
    assert dataset.queries == [1, 4]
    assert dataset.ground_truth == CC_GT
    assert dataset.excluded == [{3}, {5}]
    assert dataset.annotation() == {
        "1_1_Y": {"E": ["1_1_Y"], "S": ["1_2_Y"], "X": ["1_3_G"]},
        "2_1_Y": {"E": ["2_1_Y"], "-1": ["2_2_H"], "V": ["1_2_Y"]},
    }
    assert dataset.excluded_ids() == {"1_1_Y": ["1_3_G"], "2_1_Y": ["2_2_H"]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"ground_truth": [{1: "E"}, {9: "E"}]}, r"video numbers \[9\] outside"),
        ({"ground_truth": [{1: "Q"}, {4: "E"}]}, r"unknown labels \['Q'\]"),
        ({"queries": [1]}, "1 queries but 2 ground-truth sets"),
        ({"queries": [1, "no_such_video"]}, "neither a number nor a known id"),
    ],
)
def test_cc_web_pickle_errors(tmp_path, extra, message):
    with pytest.raises(DatasetError, match=message):
        load_cc_web_pickle(_write_cc_pickle(tmp_path / "cc.pickle", **extra))


def test_cc_web_pickle_with_code_is_refused(tmp_path):
    (tmp_path / "cc.pickle").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    with pytest.raises(UnsafePickleError, match="os.system"):
        load_cc_web_pickle(tmp_path / "cc.pickle")


def _write_cc_raw(root, gt2_extra=""):
    (root / "GT").mkdir(parents=True)
    lines = [
        f"{n}\t{vid.split('_')[0]}\t{vid[-1]}\t{vid}.flv\thttp://example.com/{n}"
        for n, vid in enumerate(CC_INDEX)
        if vid
    ]
    (root / "Video_List.txt").write_text("\n".join(lines) + "\n")
    (root / "Seed.txt").write_text("2\t2_1_Y\n1\t1\n")
    (root / "GT" / "GT_1.rst").write_text("1\tE\n2\tS\n1_3_G.flv\tX\n\n")
    (root / "GT" / "GT_2.rst").write_text("4\tE\n5\t-1\n2\tV\n" + gt2_extra)


def test_cc_web_raw_files_match_the_pickle(tmp_path):
    _write_cc_raw(tmp_path)
    raw = read_cc_web_raw(tmp_path)
    pickled = load_cc_web_pickle(_write_cc_pickle(tmp_path / "cc.pickle"))
    assert raw == pickled


@pytest.mark.parametrize(
    ("gt2_extra", "message"),
    [("3\tZ\n", r"GT_2\.rst:4: unknown label 'Z'"), ("77\tE\n", r"GT_2\.rst:4: video '77'")],
)
def test_cc_web_raw_errors(tmp_path, gt2_extra, message):
    _write_cc_raw(tmp_path, gt2_extra)
    with pytest.raises(DatasetError, match=message):
        read_cc_web_raw(tmp_path)


def test_cc_web_raw_missing_file(tmp_path):
    with pytest.raises(DatasetError, match="Video_List.txt does not exist"):
        read_cc_web_raw(tmp_path)


def test_vcdb_original_pickle(tmp_path):
    index = [f"core{i}" for i in range(4)] + [f"d{i}" for i in range(3)]
    data = {
        "index": index,
        "video_pairs": [
            {"videos": [0, 1], "overlap": [0.9, 0.85]},
            {"videos": [2, 3], "overlap": [0.5, 1.0]},
        ],
    }
    (tmp_path / "vcdb.pickle").write_bytes(py2_dumps(data) + b".")
    dataset = load_vcdb_pickle(tmp_path / "vcdb.pickle", core_size=4)
    assert dataset.video_ids == index
    np.testing.assert_array_equal(dataset.pairs, [[0, 1], [2, 3]])
    np.testing.assert_allclose(dataset.overlaps, [[0.9, 0.85], [0.5, 1.0]])
    np.testing.assert_array_equal(dataset.distractors, [4, 5, 6])

    data["distractors"] = ["d2", 4]
    data["video_pairs"][1]["videos"] = ["core2", "core3"]
    (tmp_path / "vcdb2.pickle").write_bytes(pickle.dumps(data))
    dataset = load_vcdb_pickle(tmp_path / "vcdb2.pickle")
    np.testing.assert_array_equal(dataset.distractors, [6, 4])
    np.testing.assert_array_equal(dataset.pairs, [[0, 1], [2, 3]])

    data["video_pairs"] = [{"videos": [0, 1]}]
    (tmp_path / "bad.pickle").write_bytes(pickle.dumps(data))
    with pytest.raises(DatasetError, match=r"video_pairs\[0\] needs 'videos' and 'overlap'"):
        load_vcdb_pickle(tmp_path / "bad.pickle")
    with pytest.raises(DatasetError, match="pair rows outside"):
        VCDB(["a"], np.array([[0, 1]]), np.ones((1, 2)), np.zeros(0, np.int64))


def test_parse_time():
    assert parse_time("00:01:12") == 72
    assert parse_time("01:00:00.5") == 3600.5
    assert parse_time("2:05") == 125
    assert parse_time("42") == 42
    for bad in ("", "1:2:3:4", "ab:cd", "-1", "1:-2"):
        with pytest.raises(ValueError, match="not a time"):
            parse_time(bad)


def test_vcdb_annotations_to_pairs(tmp_path):
    folder = tmp_path / "annotation"
    folder.mkdir()
    (folder / "topic_a.txt").write_text(
        "a.flv,b.flv,00:00:00,00:00:50,00:00:10,00:01:00\n"
        "a.flv,b.flv,00:00:40,00:01:20,00:01:00,00:01:40\n"  # overlaps the first in a
        "\n"
    )
    (folder / "topic_b.csv").write_text("d.mp4,c.mp4,0:10,0:20,00:00:00,00:00:10\n")
    (folder / "README").write_text("ignored")
    segments = read_vcdb_annotations(folder)
    assert [(s.topic, s.video_a, s.video_b) for s in segments] == [
        ("topic_a", "a", "b"),
        ("topic_a", "a", "b"),
        ("topic_b", "d", "c"),
    ]
    assert (segments[0].start_b, segments[0].end_b) == (10.0, 60.0)
    durations = {"a": 100.0, "b": 100.0, "c": 10.0, "d": 40.0}
    dataset = vcdb_from_annotations(segments, durations, distractor_ids=["x", "y"])
    assert dataset.video_ids == ["a", "b", "c", "d", "x", "y"]
    np.testing.assert_array_equal(dataset.pairs, [[0, 1], [2, 3]])
    # a: union [0, 80] of 100 s; b: [10, 100] of 100 s; c: 10 of 10 s; d: 10 of 40 s
    np.testing.assert_allclose(dataset.overlaps, [[0.8, 0.9], [1.0, 0.25]])
    np.testing.assert_array_equal(dataset.distractors, [4, 5])
    with pytest.raises(DatasetError, match=r"no positive duration .*'c'"):
        vcdb_from_annotations(segments, {"a": 1, "b": 1, "d": 1})


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("a,b,00:00:01,00:00:02,00:00:01\n", "expected 'videoA,videoB,startA"),
        ("a,b,00:00:01,00:0x:02,00:00:01,00:00:02\n", "not a time"),
        ("a,b,00:00:05,00:00:02,00:00:01,00:00:02\n", "ends before it starts"),
    ],
)
def test_vcdb_annotation_errors(tmp_path, line, message):
    (tmp_path / "t.txt").write_text("a,b,0,1,0,1\n" + line)
    with pytest.raises(DatasetError, match=rf"t\.txt:2: .*{message}"):
        read_vcdb_annotations(tmp_path / "t.txt")
    with pytest.raises(DatasetError, match="does not exist"):
        read_vcdb_annotations(tmp_path / "missing")


def test_generic_dataset_round_trip(tmp_path):
    dataset = GenericDataset(
        "demo",
        ["v0", "v1", "v2", "v3", "v4"],
        np.array([0, 0, 1, -1, 0]),
        ["train", "test", "test", "test", "test"],
        {"test": ["v1"]},
    )
    save_generic_dataset(tmp_path / "dataset.json", dataset)
    back = load_generic_dataset(tmp_path / "dataset.json")
    assert back.video_ids == dataset.video_ids and back.splits == dataset.splits
    np.testing.assert_array_equal(back.groups, dataset.groups)
    assert back.queries == {"test": ["v1"]}
    assert back.relevant("v1") == {"v4"}  # v0 shares the group but is in another split
    assert back.relevant("v3") == set()
    np.testing.assert_array_equal(back.split_indices("test"), [1, 2, 3, 4])
    with pytest.raises(DatasetError, match="no split 'val'"):
        back.split_indices("val")


def _generic(**overrides):
    obj = {
        "format": "ndvr-jax-dataset",
        "version": 1,
        "name": "x",
        "videos": [{"id": "a", "group": 0, "split": "s"}, {"id": "b", "group": 0, "split": "s"}],
    }
    obj.update(overrides)
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"format": "other"}, "not an 'ndvr-jax-dataset' file"),
        (_generic(version=2), "unsupported version 2"),
        (_generic(videos=[{"id": "a", "split": "s"}]), r"videos\[0\]: missing key 'group'"),
        (_generic(videos=[{"id": "a", "group": "0", "split": "s"}]), "'group' must be int"),
        (_generic(videos=[{"id": "a", "group": True, "split": "s"}]), "'group' must be int"),
        (_generic(videos=[{"id": "a", "group": 0, "split": "s"}] * 2), "ids listed twice: 'a'"),
        (_generic(videos=[{"id": "a", "group": -2, "split": "s"}]), "groups must be >= 0"),
        (_generic(queries={"t": ["a"]}), "listed for split 't'"),
        (_generic(queries={"s": ["zz"]}), "query 'zz' is not a video"),
        (_generic(queries=["a"]), "'queries' must map split names"),
    ],
)
def test_generic_dataset_errors(tmp_path, obj, message):
    path = tmp_path / "d.json"
    path.write_text(json.dumps(obj))
    with pytest.raises(DatasetError, match=message):
        load_generic_dataset(path)


def test_generic_dataset_unreadable(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_generic_dataset(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DatasetError, match="not valid JSON"):
        load_generic_dataset(os.fspath(tmp_path / "bad.json"))


def test_cc_web_dataclass_checks_lengths():
    with pytest.raises(DatasetError, match="one set per query set"):
        CCWebVideo(["", "a"], [1], [{1: "E"}], [])
