"""Evaluation binary (the original's `evaluation.py`): benchmark systems scored on its protocols.

    # CC_WEB_VIDEO, early fusion, from the triplet generator's outputs (as the original):
    python -m ndvr_jax.evaluate --dataset=cc_web_video \\
        --features=output_data/cc_web_video_features.npy --model_dir=model/ --output_dir=eval/
    # late fusion too, any FIVR-style annotation with chosen labels, cosine similarity:
    python -m ndvr_jax.evaluate --dataset=annotation --dataset_path=annotation.json \\
        --queries=queries.txt --database=database.txt --feature_files=feature_files.txt \\
        --model_dir=model/ --fusion=both --similarity=cosine --protocols=DSVR,CSVR,ISVR
    # any similarity JSONs (e.g. of `python -m ndvr_jax.similarity`):
    python -m ndvr_jax.evaluate --dataset=annotation --dataset_path=annotation.json \\
        --similarities=chamfer=chamfer.json,ausil=ausil.json --protocols=DSVR,DAVR
    # every setting from a config's `evaluate` section, overridable by the same flags:
    python -m ndvr_jax.evaluate --config=configs/dml_demo.py --model_dir=workdir/

Settings: `ndvr_jax.jobs.evaluate.default_eval_config`. Exit status 2 on bad input.
"""

from __future__ import annotations

from collections.abc import Sequence

from absl import app, flags
from ml_collections import config_flags

from ndvr_jax.config_files import config_from_flags, define_flags
from ndvr_jax.io import console
from ndvr_jax.jobs.evaluate import default_eval_config, run_evaluation

config_flags.DEFINE_config_file("config", None, "Optional config; its `evaluate` section.")
define_flags(default_eval_config(), "ndvr_jax.jobs.evaluate.default_eval_config")


def main(argv: Sequence[str]) -> None:
    del argv
    console.quiet_jax()
    config = config_from_flags(default_eval_config(), flags.FLAGS, "evaluate")
    try:
        run_evaluation(config)
    except console.USAGE_ERRORS as e:  # DatasetError, FeatureError are ValueErrors
        console.exit_with_error(e)


if __name__ == "__main__":
    app.run(main)
