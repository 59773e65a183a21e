"""Which indexed videos copy each query, by picture and by sound (`ndvr_jax.jobs.query`).

    python -m ndvr_jax.query --index=my_index query1.mp4 query2.mkv
    python -m ndvr_jax.query --index=my_index --queries=queries.txt --fusion=any
    python -m ndvr_jax.query --index=my_index --all_pairs --output_dir=dupes  # + report.html

Writes `results.json`, `results.csv` and `similarities.json` (and `groups.json`, `report.html`
with `--all_pairs`) into `--output_dir`. Exit status 2 on bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.config_files import config_from_flags, define_flags
from ndvr_jax.io import console
from ndvr_jax.jobs.query import default_query_config, run_query

config_flags.DEFINE_config_file("config", None, "Optional config; its `query` section.")
define_flags(default_query_config(), "ndvr_jax.jobs.query.default_query_config")


def main(argv: Sequence[str]) -> None:
    console.quiet_jax()
    config = config_from_flags(default_query_config(), flags.FLAGS, "query")
    if not config.index:
        raise app.UsageError("--index is required")
    try:
        summary = run_query(config, argv[1:])
    except (FileNotFoundError, ImportError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
    print(", ".join(f"{k} {v}" for k, v in summary.items()), f"-> {config.output_dir}")


if __name__ == "__main__":
    app.run(main)
