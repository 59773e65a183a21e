"""The independent test set from the `test` real-media sources (disjoint from the corpus's).

    python -m ndvr_jax.testset build --out=testset [--cache=~/.cache/ndvr_jax/media]
    python -m ndvr_jax.testset evaluate --data=testset --workdir=testset_run \
        [--config.evaluate.dml_model_dir=dml_run] [--config.evaluate.ausil_model_dir=ausil_run]

`build` writes the demo benchmark's layout (`videos.txt`, `queries.txt`, `database.txt`,
`annotation.json`, `segments.json`, `manifest.json`) plus `queries.json` (per query its
transformation class, modality and parameters) and `media.json` (licences). `evaluate` extracts
features, runs the systems and writes mAP per transformation class (`results.md`,
`results.json`). `--config=configs/testset.py:runlocal`: a tiny one.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.io import console
from ndvr_jax.jobs.media_sets import run_testset, run_testset_eval

_CONFIG = config_flags.DEFINE_config_file("config", "configs/testset.py", "Test set config.")
_OUT = flags.DEFINE_string("out", None, "build: output folder.")
_CACHE = flags.DEFINE_string("cache", None, "build: package cache (~/.cache/ndvr_jax/media).")
_DATA = flags.DEFINE_string("data", None, "evaluate: a built test set.")
_WORKDIR = flags.DEFINE_string("workdir", None, "evaluate: where features and results go.")
_USAGE = "usage: python -m ndvr_jax.testset build --out=DIR | evaluate --data=DIR --workdir=DIR"


def main(argv: Sequence[str]) -> None:
    command = argv[1:]
    if command == ["build"] and _OUT.value:
        run_testset(_CONFIG.value, _OUT.value, _CACHE.value)
    elif command == ["evaluate"] and _DATA.value and _WORKDIR.value:
        console.quiet_jax()
        run_testset_eval(_CONFIG.value, _DATA.value, _WORKDIR.value)
    else:
        console.exit_with_error(ValueError(f"{_USAGE}; got {' '.join(command) or 'nothing'}"))


if __name__ == "__main__":
    app.run(main)
