"""The one training binary: the config names the task (`config.task`), the registry trains it.

    python -m ndvr_jax.train --config=configs/dml_vcdb.py --workdir=model/
    python -m ndvr_jax.train --config=configs/dml_vcdb.py --workdir=model/ \\
        --config.mode=mining --config.num_steps=20000
    python -m ndvr_jax.train --config=configs/ausil_demo.py --workdir=ausil_run
    python -m ndvr_jax.train --config=configs/transition_demo.py --workdir=transition_run

Tasks: `ndvr_jax.jobs.train.TASKS`. A rerun with the same `--workdir` resumes from its newest
checkpoint. Exit status 2 on bad training data or settings, 1 if the NaN guard stopped it.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.io import console
from ndvr_jax.jobs.train import run_task
from ndvr_jax.training.checkpointing import check_folder

_CONFIG = config_flags.DEFINE_config_file("config", None, "Training config (configs/*.py).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Checkpoints, metrics and the trained model.")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    try:
        check_folder(_WORKDIR.value)  # before the task reads its data
        summary = run_task(_CONFIG.value, _WORKDIR.value)
    except console.USAGE_ERRORS as e:  # bad data, settings or files (DatasetError...)
        console.exit_with_error(e)
    except FloatingPointError as e:  # the NaN guard: the last checkpoint is intact
        console.exit_with_error(e, status=1)
    print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in summary.items()), flush=True)  # fmt: skip


if __name__ == "__main__":
    app.run(main)
