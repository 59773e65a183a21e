"""The main job on the embedded demo benchmark (`ndvr_jax.jobs.demo`): build it, extract visual
and audio features, run every system, evaluate, report.

    python -m ndvr_jax.demo --config=configs/demo.py --workdir=demo_run
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags, logging
from ml_collections import config_flags

from ndvr_jax.io import console
from ndvr_jax.jobs.demo import run

_CONFIG = config_flags.DEFINE_config_file("config", "configs/demo.py", "Demo config.")
_WORKDIR = flags.DEFINE_string("workdir", "demo_run", "Where features and results go.")


def main(argv: Sequence[str]) -> None:
    del argv
    if not flags.FLAGS["verbosity"].present:  # progress and results print; library logs stay quiet
        logging.set_verbosity(logging.WARNING)
    console.quiet_jax()
    run(_CONFIG.value, _WORKDIR.value)


if __name__ == "__main__":
    app.run(main)
