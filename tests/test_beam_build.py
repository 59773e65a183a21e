"""TFDS builders as Apache Beam pipelines (Beam's local DirectRunner) on tiny fake folders: the
same array_record examples as the in-process build, missing features extracted inside the
pipeline, and the build_tfds binary's --beam_pipeline_options."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow_datasets as tfds

from ndvr_jax.data import tfds_builders
from ndvr_jax.hashing import data
from tests.test_hashing_tfds import fake_benchmark, fake_ucf101, read_split

beam = pytest.importorskip(
    "apache_beam", reason="apache-beam is not installed (pip install 'ndvr-jax[beam]')"
)
from ndvr_jax.data.tfds_beam import pipeline_options  # noqa: E402

LOCAL = "runner=DirectRunner,direct_num_workers=1"


def examples(source):
    return {data.video_id(e): (int(e["label"]), e["features"]) for e in source}


def assert_same_examples(got, want):
    assert sorted(got) == sorted(want)
    for video, (label, features) in want.items():
        assert got[video][0] == label
        np.testing.assert_array_equal(got[video][1], features)


def test_beam_build_equals_the_in_process_build(tmp_path, monkeypatch):
    from ndvr_jax.data import tfds_beam

    batches = []  # what the pipeline's DoFn saw (the local runner runs it in this process)
    process = tfds_beam.ExtractAndLoad.process
    monkeypatch.setattr(
        tfds_beam.ExtractAndLoad,
        "process",
        lambda self, entries: batches.append([v for v, _ in entries]) or process(self, entries),
    )
    fake_ucf101(tmp_path / "manual")
    # One video has no features yet: the pipeline's DoFn runs the extract command on it.
    missing = tmp_path / "manual" / "features" / "v_YoYo_g03_c01.npy"
    missing.unlink()
    script = (
        "import sys, numpy as np;"
        "from ndvr_jax.io.store import FeatureStore, read_id_path_list;"
        "a = dict(x.split('=', 1) for x in sys.argv[1:]);"
        "s = FeatureStore(a['--output_dir']);"
        "[s.write(i, np.full((4, 6), 23, np.float32), {}) for i, _ in"
        " read_id_path_list(a['--video_list'])]"
    )
    config = tfds_builders.SplitConfig(
        name="split1_standin", split=1, extract_command=(sys.executable, "-c", script)
    )
    builds = {}
    for kind, options in (("beam", pipeline_options(LOCAL)), ("plain", None)):
        builder = tfds_builders.Ucf101Features(
            config=config, data_dir=str(tmp_path / kind), file_format="array_record"
        )
        download = tfds.download.DownloadConfig(
            manual_dir=str(tmp_path / "manual"), beam_options=options
        )
        builder.download_and_prepare(download_config=download)
        builds[kind] = {s: examples(builder.as_data_source(split=s)) for s in ("train", "test")}
        if kind == "beam":  # extracted by the pipeline, before the plain build ran
            assert missing.is_file()
            # the pipeline's DoFn read every video once
            seen = sorted(v for batch in batches for v in batch)
            assert seen == sorted([*builds["beam"]["train"], *builds["beam"]["test"]])
    for split in ("train", "test"):
        assert_same_examples(builds["beam"][split], builds["plain"][split])
    assert len(builds["beam"]["train"]) == 6 and len(builds["beam"]["test"]) == 3
    np.testing.assert_array_equal(builds["beam"]["train"]["v_YoYo_g03_c01"][1], np.full((4, 6), 23))


def test_build_tfds_binary_with_beam_options(tmp_path):
    ids = fake_benchmark(tmp_path / "bench")
    command = [
        sys.executable, "-m", "ndvr_jax.build_tfds", "--dataset=ndvr_demo_features/all",
        f"--manual_dir={tmp_path / 'bench'}", f"--data_dir={tmp_path / 'tfds'}",
        f"--beam_pipeline_options={LOCAL}",
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    everything = read_split("ndvr_demo_features/all", "train", tmp_path / "tfds")
    assert {v: int(r["label"]) for v, r in everything.items()} == {
        "q0": 0, "q1": 1, "a": 0, "b": 1, "c": -1}  # fmt: skip
    for i, v in enumerate(ids):
        np.testing.assert_array_equal(everything[v]["features"], np.full((i + 1, 4), i))
    assert sorted(read_split("ndvr_demo_features/all", "queries", tmp_path / "tfds")) == [
        "q0",
        "q1",
    ]
    assert sorted(read_split("ndvr_demo_features/all", "database", tmp_path / "tfds")) == [
        "a", "b", "c"]  # fmt: skip
