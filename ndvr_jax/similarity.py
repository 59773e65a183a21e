"""Similarities of a query list against a database list with one system, as a similarity JSON.

    python -m ndvr_jax.similarity --system=chamfer --queries=q_features.txt \\
        --database=db_features.txt --output=chamfer.json
    python -m ndvr_jax.similarity --system=dml --model_dir=model/ --fusion=late \\
        --queries=q_features.txt --database=db_features.txt --output=dml.json
    python -m ndvr_jax.similarity --system=ausil --model_dir=ausil_run \\
        --queries=queries.txt --database=database.txt --features_dir=ausil_run/features \\
        --output=ausil.json

Systems: global, chamfer, dml, ausil (`ndvr_jax.jobs.similarity`). The output is
`{query_id: {db_id: similarity}}`, which `python -m ndvr_jax.evaluate --similarities=` scores.
Exit status 2 on bad input (a missing list or feature file, wrong widths, NaN rows).
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.config_files import config_from_flags, define_flags
from ndvr_jax.io import console
from ndvr_jax.jobs.similarity import default_similarity_config, run_similarity

config_flags.DEFINE_config_file("config", None, "Optional config; its `similarity` section.")
define_flags(default_similarity_config(), "ndvr_jax.jobs.similarity.default_similarity_config")


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    config = config_from_flags(default_similarity_config(), flags.FLAGS, "similarity")
    try:
        run_similarity(config)
    except console.USAGE_ERRORS as e:  # FeatureError is a ValueError
        console.exit_with_error(e)


if __name__ == "__main__":
    app.run(main)
