"""The README never lies: its demo-data command block runs as written (on the tiny benchmark, each
`configs/*.py` as its `:runlocal` variant), and every other README command parses its flags."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMAND = re.compile(r"^python -m (ndvr_jax(?:\.\w+)+)")
# Parses a binary's flags for each argv (absl validates names, values, required flags and
# `--config` files with their `--config.key` overrides) without running its main.
# The module is imported once; each argv is parsed in a forked child (absl flags parse once).
PARSE = """
import importlib, json, os, sys
from absl import flags
importlib.import_module(sys.argv[1])
failed = 0
for argv in json.loads(sys.argv[2]):
    child = os.fork()
    if child == 0:
        sys.argv = [sys.argv[1], *argv]  # config_flags looks for `--config.x` overrides here
        flags.FLAGS(sys.argv)
        os._exit(0)
    failed += os.waitpid(child, 0)[1] != 0
sys.exit(failed)
"""


def bash_blocks(text: str) -> list[list[str]]:
    """The commands of each ```bash block: continuation lines joined, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    out = []
    for block in blocks:
        joined = re.sub(r"\s*\\\n\s*", " ", block)
        lines = [re.sub(r"\s+#.*$", "", line).strip() for line in joined.splitlines()]
        out.append([line for line in lines if line and not line.startswith("#")])
    return out


def demo_block(blocks: list[list[str]]) -> list[str]:
    (block,) = [b for b in blocks if any("scripts/make_demo.py" in c for c in b)]
    return block


def for_tiny_run(command: str) -> list[str]:
    """argv of a README command for the test: this interpreter, tiny sizes, `:runlocal` configs."""
    command = command.replace("--size small", "--size tiny")
    command = re.sub(r"(--config=configs/\w+\.py)(?=\s|$)", r"\1:runlocal", command)
    argv = shlex.split(command)
    if argv[0] != "python":
        raise ValueError(f"not a python command: {command}")
    return [sys.executable, *argv[1:]]


def test_every_readme_command_is_a_known_binary_whose_flags_parse():
    blocks = bash_blocks((ROOT / "README.md").read_text())
    demo = demo_block(blocks)
    commands = [c for b in blocks if b is not demo for c in b if COMMAND.match(c)]
    assert len(commands) >= 8
    by_module: dict[str, list[list[str]]] = {}
    for command in commands:
        by_module.setdefault(COMMAND.match(command).group(1), []).append(shlex.split(command)[3:])
    for module, argvs in by_module.items():
        run = subprocess.run(
            [sys.executable, "-c", PARSE, module, json.dumps(argvs)],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        assert run.returncode == 0, f"{module} {argvs}\n{run.stderr[-1500:]}"


def test_readme_demo_chain_runs_as_written(tmp_path):
    commands = demo_block(bash_blocks((ROOT / "README.md").read_text()))
    assert commands[0].startswith("python scripts/make_demo.py")
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    for command in commands:
        run = subprocess.run(
            for_tiny_run(command), cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, f"{command}\n{run.stdout[-1500:]}\n{run.stderr[-3000:]}"
    results = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert set(results) == {"global", "chamfer", "dml", "ausil"}
    assert set(results["chamfer"]) == {"DSVR", "CSVR", "ISVR", "DAVR"}
    assert 0.5 < results["chamfer"]["DSVR"]["mAP"] <= 1.0
    assert 0.3 < results["ausil"]["DAVR"]["mAP"] <= 1.0
    assert (tmp_path / "eval" / "pr_curves.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("python -m ndvr_jax.train --config=configs/x.py --workdir=w",
         ["python", "-m", "ndvr_jax.train", "--config=configs/x.py:runlocal", "--workdir=w"]),
        ("python scripts/make_demo.py --out d --size small",
         ["python", "scripts/make_demo.py", "--out", "d", "--size", "tiny"]),
    ],
)  # fmt: skip
def test_tiny_run_rewrites(command, expected):
    assert for_tiny_run(command) == [sys.executable, *expected[1:]]


def test_bash_blocks_join_continuations_and_drop_comments():
    text = "x\n```bash\n# a comment\npython -m ndvr_jax.train \\\n    --workdir=w  # note\n```\n"
    assert bash_blocks(text) == [["python -m ndvr_jax.train --workdir=w"]]
