"""Bad input through the real command lines: one line on stderr, exit status 2, a quiet console."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ndvr_jax.backbones import create_backbone, weights_setting
from tests.media import write_test_video

REPO = Path(__file__).resolve().parents[1]


def run(binary: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}  # let jax probe
    command = [sys.executable, "-m", f"ndvr_jax.{binary}", *args]
    return subprocess.run(
        command, cwd=REPO, env={**env, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and all(f in errors[0] for f in fragments), result.stderr[-3000:]


def extract(video_list: Path, output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return run("extract", "--config=configs/extract.py:runlocal", f"--video_list={video_list}",
               f"--output_dir={output_dir}", *extra)  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "fragments"),
    [(["a a.mp4", "lonely"], ["videos.txt:2", "expected '<id> <path>'"]),
     (["a a.mp4", "b b.mp4", "a c.mp4"], ["videos.txt:3", "'a' appears twice"])],
)  # fmt: skip
def test_extract_names_the_bad_list_line(tmp_path, lines, fragments):
    (tmp_path / "videos.txt").write_text("\n".join(lines) + "\n")
    assert_one_line_error(extract(tmp_path / "videos.txt", tmp_path / "out"), *fragments)


def test_extract_names_a_missing_weights_file(tmp_path):
    write_test_video(tmp_path / "v.mp4", seconds=1.0)
    (tmp_path / "videos.txt").write_text("v v.mp4\n")
    result = extract(tmp_path / "videos.txt", tmp_path / "out", "--config.weights=nope.pth")
    assert_one_line_error(result, "weights file 'nope.pth' does not exist", "weights=default")


def test_empty_list_keeps_the_store_and_the_console_is_quiet(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "feature_files.txt").write_text("a\ta.npy\nb\tb.npy\n")
    (tmp_path / "videos.txt").write_text("")
    result = extract(tmp_path / "videos.txt", out)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "feature_files.txt").read_text() == "a\ta.npy\nb\tb.npy\n"
    assert "lists no videos" in result.stderr
    assert "Unable to initialize backend" not in result.stderr


def test_train_refuses_a_workdir_that_is_a_file(tmp_path):
    (tmp_path / "model").write_text("")
    workdir = tmp_path / "model"
    result = run("train", "--config=configs/dml_demo.py:runlocal", f"--workdir={workdir}")
    assert_one_line_error(result, "is a file", "--workdir")


def test_triplets_names_an_invalid_annotation(tmp_path):
    (tmp_path / "annotation.json").write_text('{"q": {"ND": ["a",]}}')
    (tmp_path / "ids.txt").write_text("q\n")
    (tmp_path / "features.txt").write_text("q\tq.npy\n")
    result = run(
        "triplets", "--dataset=annotation", f"--dataset_path={tmp_path / 'annotation.json'}",
        f"--queries={tmp_path / 'ids.txt'}", f"--database={tmp_path / 'ids.txt'}",
        f"--feature_files={tmp_path / 'features.txt'}", f"--output_dir={tmp_path / 'out'}",
    )  # fmt: skip
    assert_one_line_error(result, "annotation.json:1: not valid JSON")


def test_weights_none_from_a_command_line_means_random_weights():
    assert weights_setting("None") is None and weights_setting("default") == "default"
    with pytest.raises(FileNotFoundError, match="weights=default, None"):
        create_backbone("vgg16", weights="None.pth")


def test_training_console_shows_progress_but_no_library_info_lines(tmp_path):
    result = run("train", "--config=configs/hashing_64.py:runlocal", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert "train 20/20" in console and "mAP@5" in result.stdout
    assert "checkpoint.py" not in console and "_NonBlockingMetadataStore" not in console
    verbose = run("train", "--config=configs/hashing_64.py:runlocal", "--verbosity=0",
                  f"--workdir={tmp_path / 'v'}")  # fmt: skip
    assert "checkpoint" in verbose.stderr  # --verbosity brings them back


def test_every_binary_quiets_the_library_console():
    """Each `python -m ndvr_jax.<binary>` calls `console.quiet_jax()` in its `main`."""
    binaries = [
        p for p in sorted((REPO / "ndvr_jax").glob("*.py")) if "app.run(main)" in p.read_text()
    ]
    binaries.append(REPO / "ndvr_jax" / "hashing" / "report.py")
    assert len(binaries) >= 12
    for path in binaries:
        tree = ast.parse(path.read_text())
        main = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        calls = [ast.unparse(n.func) for n in ast.walk(main) if isinstance(n, ast.Call)]
        assert "console.quiet_jax" in calls, path.name
