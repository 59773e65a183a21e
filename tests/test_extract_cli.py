"""The extract binary end to end: real default weights, resume, failures, exit status."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from ndvr_jax.data.broken_media import VIDEO_OK, make_broken_media
from ndvr_jax.io.store import read_id_path_list
from tests.media import write_test_video

REPO = Path(__file__).resolve().parents[1]


def run_extract(video_list: Path, output_dir: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "ndvr_jax.extract", "--config=configs/extract.py:runlocal",
        f"--video_list={video_list}", f"--output_dir={output_dir}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_extract_binary_writes_features_logs_failures_and_resumes(tmp_path):
    lines = []
    for i, (seconds, codec, ext) in enumerate([(3, "libx264", "mp4"), (2, "mpeg4", "avi")]):
        path = tmp_path / f"good{i}.{ext}"
        write_test_video(path, seconds=seconds, codec=codec)
        lines.append(f"good{i} {path}")
    broken = make_broken_media(tmp_path / "broken")
    lines += [f"{video_id}\t{path}" for video_id, path in broken.items()]
    video_list = tmp_path / "videos.txt"
    video_list.write_text("\n".join(lines) + "\n")
    out = tmp_path / "features"

    first = run_extract(video_list, out)
    assert first.returncode == 1, first.stderr[-2000:]
    assert "extracted" in first.stdout

    features = np.load(out / "good0.npy")
    assert features.shape == (3, 2048) and features.dtype == np.float32
    assert np.all(np.isfinite(features))
    meta = json.loads((out / "good0.json").read_text())
    assert meta["timestamps"] == [0.0, 1.0, 2.0] and meta["backbone"] == "efficientnet_lite0"
    listed = dict(read_id_path_list(out / "feature_files.txt"))
    failed = {row.split("\t")[0] for row in (out / "failures.tsv").read_text().splitlines()}
    assert set(listed) == {"good0", "good1", *VIDEO_OK}
    assert failed == set(broken) - set(VIDEO_OK)
    assert not list(out.rglob("*.tmp"))

    second = run_extract(video_list, out)
    assert f"already done {len(listed)}" in second.stdout
    np.testing.assert_array_equal(np.load(out / "good0.npy"), features)
