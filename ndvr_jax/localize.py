"""Localises copied segments of every query in a database of videos (PDVR).

    python -m ndvr_jax.localize --config=configs/localize_demo.py \
        --queries=queries.txt --database=database.txt [--config.ground_truth=segments.json]

`--queries` and `--database` are `<id>\\t<feature path>` lists. Writes segments JSON, VSC CSV,
VCSL box JSON (one set per method), a timeline PNG per query and `summary.json` to
`config.output_dir`; prints the score table when given ground truth. See
`ndvr_jax.pdvr.localize`. With `--config=configs/localize_audio.py` (`modality` "audio") the
lists are landmark files (`extract --config.mode=landmarks`) and the copied spans come from
their aligned hits (`ndvr_jax.landmarks.localize`).
"""

from __future__ import annotations

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.io import console
from ndvr_jax.landmarks.localize import localize_audio
from ndvr_jax.pdvr.localize import localize

_CONFIG = config_flags.DEFINE_config_file(
    "config", "configs/localize_demo.py", "Localisation config."
)
_QUERIES = flags.DEFINE_string("queries", None, "`<id>\\t<feature path>` list of the queries.")
_DATABASE = flags.DEFINE_string("database", None, "`<id>\\t<feature path>` list of the database.")


def main(argv: list[str]) -> None:
    del argv
    console.quiet_jax()
    if not _QUERIES.value or not _DATABASE.value:
        raise app.UsageError("--queries and --database are required")
    run = localize_audio if _CONFIG.value.get("modality") == "audio" else localize
    try:
        summary = run(_CONFIG.value, _QUERIES.value, _DATABASE.value)
    except console.USAGE_ERRORS as e:
        console.exit_with_error(e)
    print(f"outputs in {_CONFIG.value.output_dir} ({summary['queries']} queries)", flush=True)


if __name__ == "__main__":
    app.run(main)
